"""Item 4: the artifact retention and redaction policy: caps per sensitivity, and each template's
retention and redaction rules with their rationale."""

from __future__ import annotations

import inspect

from orchestration.artifacts import retention
from orchestration.catalog.templates import Template
from orchestration.evidence.document import Document, code, generated_from, join, table
from orchestration.exports import redaction
from orchestration.links import expiry

TITLE = "Artifact retention and redaction policy"


def _policy_paragraphs(doc: str | None) -> str:
    """A module docstring's summary and its policy paragraph (not how it is implemented)."""
    return "\n\n".join(inspect.cleandoc(doc or "").split("\n\n")[:2])


def document(templates: list[Template]) -> Document:
    sensitivities = list(retention.SENSITIVITY_MAX_DAYS)
    caps = table(["sensitivity", "artifacts kept at most", "a download link lives at most"],
                 [(s, f"{retention.SENSITIVITY_MAX_DAYS[s]} days" if retention.SENSITIVITY_MAX_DAYS[s]
                   else "as the template says", expiry.human(expiry.EXPIRY_CAPS[s])) for s in sensitivities])
    kept = table(
        ["template", "sensitivity", "retention_days asked", "kept (days, after the cap)", "external variant",
         "redaction rules"],
        [(t.label, t.sensitivity, t.retention_days, retention.retention_days(t),
          "yes" if t.redaction.external_variant else "no", len(t.redaction.rules)) for t in templates])
    rules = table(
        ["template", "source field", "action", "rationale"],
        [(t.label, code(r.field), r.action + (f" to {r.length} characters" if r.length else ""), r.rationale)
         for t in templates for r in t.redaction.rules])
    strength = table(["action", "strength (the strongest rule on a column wins)"],
                     sorted(redaction.STRENGTH.items(), key=lambda kv: kv[1]))
    markdown = join(
        f"# {TITLE}",
        generated_from("artifacts/retention.py", "links/expiry.py", "exports/redaction.py", "templates/*.yaml"),
        "## Retention",
        inspect.cleandoc(retention.__doc__ or ""),
        caps,
        kept,
        "## Redaction",
        _policy_paragraphs(redaction.__doc__),
        strength,
        f"A hash is the first {redaction.HASH_CHARS} hex characters of a sha256 keyed per tenant; "
        f"a masked value reads `{redaction.MASK}`.",
        rules if any(t.redaction.rules for t in templates) else "No template has redaction rules.",
    )
    problems = () if templates else ("no template file was found",)
    return Document(4, "retention_and_redaction_policy", TITLE, markdown, "missing" if problems else "ok", problems)
