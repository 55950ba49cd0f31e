"""Item 2: the metric dictionary and formula specification, as `nexus-reports metrics doc` makes it."""

from __future__ import annotations

from orchestration.evidence.document import Document, join
from orchestration.metrics import dbt_manifest, dictionary

TITLE = "Metric dictionary and formula specification"


def document() -> Document:
    try:
        entries = dictionary.dictionary()
    except dbt_manifest.DbtError as exc:
        return Document(2, "metric_dictionary", TITLE, join(f"# {TITLE}", f"Not available: {exc}"), "missing",
                        (f"the dbt manifest cannot be read: {exc}",))
    problems = () if entries else ("the dbt manifest defines no metric",)
    return Document(2, "metric_dictionary", TITLE, dictionary.render_markdown(entries),
                    "missing" if problems else "ok", problems)
