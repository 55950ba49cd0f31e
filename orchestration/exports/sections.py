"""What the renderers read: section snapshots and the report's header facts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

REDACTION_MASK = "[redacted]"  # what a masked value reads as, in every format
ACTIONS = {"mask": "masked", "hash": "replaced by a keyed hash", "drop": "left out", "truncate": "shortened"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # text, integer, bigint, numeric, date, timestamptz, boolean
    label: str | None = None

    @property
    def header(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class SectionSnapshot:
    name: str
    title: str
    table: str  # schema-qualified, quoted: snapshots."r_<run>__<section>"
    columns: tuple[Column, ...]
    order_by: tuple[str, ...] = ()
    row_count: int = 0

    def select_sql(self, expressions: list[str] | None = None, limit: int | None = None) -> str:
        cols = ", ".join(expressions or [f'"{c.name}"' for c in self.columns])
        order = f" order by {', '.join(f'{chr(34)}{c}{chr(34)}' for c in self.order_by)}" if self.order_by else ""
        bound = f" limit {int(limit)}" if limit is not None else ""
        return f"select {cols} from {self.table}{order}{bound}"


@dataclass(frozen=True)
class ChartSpec:
    section: str
    kind: str  # bar | stacked_bar | line | area | pie (templates draw bar and line)
    x: str
    y: tuple[str, ...]
    title: str


@dataclass(frozen=True)
class KeyFigure:
    """One headline number: the value as computed (None when the period has none) and its unit
    ('%', 'min', 'ms' or ''); each renderer formats it (exports/numbers.py), the JSON keeps it a number."""

    label: str
    value: int | float | None
    unit: str = ""


@dataclass(frozen=True)
class RedactionNote:
    """One redaction the external variant applies, as its first page and About sheet state it."""

    column: str  # the column's label as the reader sees it
    action: str  # mask | hash | drop | truncate
    rationale: str


@dataclass(frozen=True)
class ReportContext:
    template_key: str
    template_version: int
    title: str
    tenant_id: str
    tenant_name: str
    period_label: str
    window_start: dt.date
    window_end: dt.date  # exclusive
    run_id: str
    input_hash: str
    generated_at: dt.datetime
    key_figures: tuple[KeyFigure, ...] = ()
    charts: tuple[ChartSpec, ...] = ()
    primary_section: str = ""
    degraded: bool = False
    degraded_reason: str = ""
    # The template's sensitivity (internal, confidential, restricted): every format carries it as
    # its marking. Which variant this file is, and for the external one the policy it applies.
    sensitivity: str = "internal"
    variant: str = "internal"
    redaction_policy: str = ""  # e.g. "redaction policy of compliance_evidence_summary v1"
    redactions: tuple[RedactionNote, ...] = ()

    @property
    def marking(self) -> str:
        """The classification marking every page and sheet shows, e.g. RESTRICTED."""
        return self.sensitivity.upper()

    @property
    def redacted(self) -> bool:
        return self.variant == "external"

    @property
    def variant_statement(self) -> str:
        """What the external variant says about itself on its first page and About sheet ('' otherwise)."""
        if not self.redacted:
            return ""
        applied = "; ".join(f"{r.column}: {ACTIONS.get(r.action, r.action)}" for r in self.redactions) or "none needed"
        policy = self.redaction_policy or f"the redaction policy of {self.template_key} v{self.template_version}"
        return (f"External (redacted) variant: redactions were applied under {policy}. "
                f"Redacted columns: {applied}.")
