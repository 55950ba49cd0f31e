"""Source freshness before a run, and late-arriving data after it.

Before snapshotting, each source a template declares is measured for the run's tenant: its
watermark is the newest `_loaded_at`. It must be no older than `max_age_hours` before the
earlier of the window end and now. A published run keeps the watermarks it saw; rows loaded
after them whose event time falls inside its window are late data, and the template's backfill
policy decides: ignore, flag the run, or correct it with a new run that supersedes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from orchestration.access import audit
from orchestration.catalog.templates import SourceDef, Template
from orchestration.runs import records
from orchestration.runs.records import RunRecord, run_config_of


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
    with conn, conn.cursor() as cur:
        for source in template.sources:
            cur.execute(f"select max(_loaded_at) from raw.{_table(source)} where tenant_id = %s", (tenant_id,))
            watermark = cur.fetchone()[0]
            required = min(end, now) - dt.timedelta(hours=source.max_age_hours)
            states.append(SourceState(source.name, watermark, required, watermark is not None and watermark >= required))
    return states


def _table(source: SourceDef) -> str:
    # Source names are identifiers by the catalog's schema; quoting keeps them inert all the same.
    return f'"{source.name}"'


def watermarks(states: list[SourceState]) -> dict[str, str | None]:
    return {s.source: s.watermark.isoformat() if s.watermark else None for s in states}


def source_problems(conn, template: Template) -> list[str]:
    """Gate A: every declared source is a raw table with tenant_id, _loaded_at and its event time."""
    problems = []
    with conn, conn.cursor() as cur:
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


# ---------------------------------------------------------------- after publishing


def _template_of(conn, record: RunRecord) -> Template:
    from orchestration.governance import lifecycle  # governance's Gate A uses this module

    template, _ = lifecycle.load_version(conn, record.template_key, record.template_version, tenant_id=record.tenant_id)
    return template


def late_rows(conn, template: Template, record: RunRecord) -> dict[str, int]:
    """Per source: rows loaded after the run's watermark whose event time is inside its window."""
    found = {}
    with conn, conn.cursor() as cur:
        for source in template.sources:
            mark = record.source_watermarks.get(source.name)
            if mark is None:
                continue
            cur.execute(
                f"""select count(*) from raw.{_table(source)}
                     where tenant_id = %s and _loaded_at > %s
                       and "{source.event_time}" >= %s and "{source.event_time}" < %s""",
                (record.tenant_id, mark, record.window_start, record.window_end),
            )
            count = cur.fetchone()[0]
            if count:
                found[source.name] = count
    return found


@dataclass(frozen=True)
class Correction:
    run: RunRecord
    reason: str


def due_corrections(conn, now: dt.datetime | None = None) -> list[Correction]:
    """Published runs that need a new run superseding them: degraded ones whose sources are
    fresh again, and ones with late data under a `correct` policy. `flag` marks and audits."""
    due = []
    for record in records.latest_published(conn):
        template = _template_of(conn, record)
        if not template.sources:
            continue
        if record.degraded:
            states = measure(conn, template, record.tenant_id, record.window_end, now)
            if all(s.fresh for s in states):
                due.append(Correction(record, "sources are fresh again after a degraded run"))
            continue
        late = late_rows(conn, template, record)
        if not late or template.backfill == "ignore":
            continue
        detail = ", ".join(f"{n} late rows in {s}" for s, n in late.items())
        if template.backfill == "flag":
            if record.late_data_at is None:
                _flag(conn, record, detail)
            continue
        due.append(Correction(record, f"late-arriving data: {detail}"))
    return due


def _flag(conn, record: RunRecord, detail: str) -> None:
    records.mark_late_data(conn, record.run_id)
    audit.record_now(conn, actor="svc:late-data", action="run.late_data_flagged", target=record.run_id,
                     outcome="succeeded", tenant_id=record.tenant_id, correlation_id=record.run_id,
                     details={"detail": detail})


def correction_config(record: RunRecord, requester: str) -> dict[str, Any]:
    """report_run config for a run that supersedes `record`: the same contract, trigger correction."""
    return run_config_of(record, requester=requester, trigger="correction", supersedes=record.run_id)
