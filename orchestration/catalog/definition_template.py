"""A saved report definition as the run engine's template: one section, compiled from the
registry, so a definition run takes the same steps as any report (snapshot under row-level
security, Gate B, every format, manifest, atomic publish).

The template is rebuilt from the definition's version at every execution (never stored), so what
runs is what the registry and the requester's rights allow now. Its key is the definition id
and its version the definition's version: the run record names both.
"""

from __future__ import annotations

import datetime as dt

from orchestration.access.clearance import CLASSIFICATION_ORDER
from orchestration.catalog.definitions import Definition, DefinitionVersion
from orchestration.catalog.templates import ColumnDef, FilterDef, RolesDef, SectionDef, Template

SECTION = "rows"
SUITE = "report_definition"
FORMATS = ("csv", "xlsx", "json")
RETENTION_DAYS = 90
MAX_ROWS = 50_000_000  # a run is never truncated; this only bounds Gate B's row-count expectation
# Who may run a definition is the policy's `run` action, asked by the run service with the
# caller's token; the roles here are those the admission check asks again at execution.
RUN_ROLES = ("analyst", "manager", "template_owner", "tenant_admin", "root")
RECEIVE_ROLES = ("viewer", "analyst", "manager", "executive", "tenant_admin", "root")


def is_definition_key(key: str) -> bool:
    return key.startswith("rdef_")


def sensitivity(classifications: list[str]) -> str:
    """The template sensitivity a definition's output carries: its most sensitive field's
    classification, on the template scale (public and internal are internal; pii is restricted)."""
    top = max(classifications, key=CLASSIFICATION_ORDER.index, default="internal")
    return {"public": "internal", "pii": "restricted"}.get(top, top)


def _filter_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        try:
            dt.date.fromisoformat(value)
            return "date" if len(value) == 10 else "text"
        except ValueError:
            return "text"
    raise TypeError(f"a definition parameter must be a JSON scalar, not {type(value).__name__}")


def template_for(definition: Definition, version: DefinitionVersion, *, sql: str, params: dict[str, object],
                 columns: list[tuple[str, str, str]]) -> Template:
    """The one-section template of a compiled definition. `columns` are (name, type, classification)."""
    spec = version.spec
    return Template(
        key=definition.definition_id,
        version=version.version,
        title=spec.report_name,
        description=spec.description or "",
        owner=version.created_by,
        cadence="daily",
        formats=FORMATS,
        sensitivity=sensitivity([c[2] for c in columns]),
        roles=RolesDef(run=RUN_ROLES, receive=RECEIVE_ROLES),
        retention_days=RETENTION_DAYS,
        max_window_days=366,
        filters=tuple(FilterDef(name=name, type=_filter_type(value)) for name, value in params.items()),
        expectation_suite=SUITE,
        primary_section=SECTION,
        sections=(SectionDef(name=SECTION, title=spec.report_name, mandatory=False, max_rows=MAX_ROWS,
                             columns=tuple(ColumnDef(name=name, type=kind) for name, kind, _ in columns), sql=sql),),
    )
