"""The pack's documents as one PDF: each document's Markdown as HTML, one after the other, with
the product's PDF styles and classification marking (exports/pdf_export.py, base_style.css)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import mistune
from weasyprint import HTML

from orchestration.evidence.document import Document
from orchestration.exports.pdf_export import MARKING_COLORS, safe_url_fetcher

# The pack shows the platform's access rules, KPIs and every tenant's template versions.
SENSITIVITY = "confidential"
TITLE = "Signoff evidence pack"
_env = jinja2.Environment(
    loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(Path(__file__).parent),
                                jinja2.FileSystemLoader(Path(__file__).parents[1] / "exports")]),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
# escape=True: raw HTML in a document (the hand-written runbook, a reason typed by someone) is shown, not run.
_markdown = mistune.create_markdown(escape=True, plugins=["table"])


def html(markdown: str) -> str:
    return str(_markdown(markdown)).replace("<table>", '<table class="data">')


def write_pdf(documents: list[Document], path: Path, *, period: str, generated: str, actor: str) -> int:
    """Write the combined PDF; returns its page count."""
    page = _env.get_template("pack.html.j2").render(
        title=TITLE, period=period, generated=generated, actor=actor,
        marking=SENSITIVITY.upper(), marking_color=MARKING_COLORS[SENSITIVITY],
        documents=[{"item": d.item, "title": d.title, "file_name": d.file_name, "status": d.status,
                    "html": jinja2.utils.markupsafe.Markup(html(d.markdown))} for d in documents],
    )
    document = HTML(string=page, base_url=None, url_fetcher=safe_url_fetcher()).render()
    document.write_pdf(str(path))
    return len(document.pages)
