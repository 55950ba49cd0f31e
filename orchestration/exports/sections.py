"""What the renderers read: section snapshots and the report's header facts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


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
    kind: str  # bar | line
    x: str
    y: tuple[str, ...]
    title: str


@dataclass(frozen=True)
class KeyFigure:
    label: str
    value: str
    unit: str = ""


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
