"""Source freshness before a run (and Gate A's check that declared sources exist).

Before snapshotting, each source a template declares is measured for the run's tenant: its
watermark is the newest `_loaded_at`. It must be no older than `max_age_hours` before the
earlier of the window end and now. What happens after publishing (late data, corrections)
is in runs/corrections.py: Gate A (governance) uses this module, and corrections use
governance, so the two halves live apart and neither imports the other's user.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from orchestration.catalog.templates import SourceDef, Template


@dataclass(frozen=True)
class SourceState:
    source: str
    watermark: dt.datetime | None
    required: dt.datetime
    fresh: bool

    def describe(self) -> str:
        seen = self.watermark.isoformat(timespec="minutes") if self.watermark else "no rows"
        return f"{self.source}: newest load {seen}, needed {self.required.isoformat(timespec='minutes')}"


def measure(conn, template: Template, tenant_id: str, window_end: dt.date,
            now: dt.datetime | None = None) -> list[SourceState]:
    now = now or dt.datetime.now(dt.UTC)
    end = dt.datetime.combine(window_end, dt.time(), tzinfo=dt.UTC)
    states = []
    with conn.cursor() as cur:
        for source in template.sources:
            cur.execute(f"select max(_loaded_at) from raw.{quoted_table(source)} where tenant_id = %s", (tenant_id,))
            watermark = cur.fetchone()[0]
            required = min(end, now) - dt.timedelta(hours=source.max_age_hours)
            states.append(SourceState(source.name, watermark, required, watermark is not None and watermark >= required))
    return states


def quoted_table(source: SourceDef) -> str:
    # Source names are identifiers by the catalog's schema; quoting keeps them inert all the same.
    return f'"{source.name}"'


def watermarks(states: list[SourceState]) -> dict[str, str | None]:
    return {s.source: s.watermark.isoformat() if s.watermark else None for s in states}


def source_problems(conn, template: Template) -> list[str]:
    """Gate A: every declared source is a raw table with tenant_id, _loaded_at and its event time."""
    problems = []
    with conn.cursor() as cur:
        for source in template.sources:
            cur.execute(
                """select array_agg(column_name::text) from information_schema.columns
                    where table_schema = 'raw' and table_name = %s""",
                (source.name,),
            )
            columns = set(cur.fetchone()[0] or [])
            if not columns:
                problems.append(f"source {source.name}: no such raw table")
                continue
            missing = {"tenant_id", "_loaded_at", source.event_time} - columns
            if missing:
                problems.append(f"source {source.name}: raw.{source.name} lacks {', '.join(sorted(missing))}")
    return problems
