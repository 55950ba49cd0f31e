"""Late-arriving data and corrections of published runs.

A published run keeps the source watermarks it saw; rows loaded after them whose event time
falls inside its window are late data, and the template's backfill policy decides: ignore,
flag the run, or correct it with a new run that supersedes it. A degraded run is corrected
once its sources are fresh again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from orchestration.access import audit
from orchestration.catalog.templates import Template
from orchestration.governance import versions
from orchestration.runs import freshness, records
from orchestration.runs.run_record import RunRecord, run_config_of


def late_rows(conn, template: Template, record: RunRecord) -> dict[str, int]:
    """Per source: rows loaded after the run's watermark whose event time is inside its window."""
    found = {}
    with conn.cursor() as cur:
        for source in template.sources:
            mark = record.source_watermarks.get(source.name)
            if mark is None:
                continue
            cur.execute(
                f"""select count(*) from raw.{freshness.quoted_table(source)}
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
        template = versions.template_of_run(conn, record)
        if not template.sources:
            continue
        if record.degraded:
            states = freshness.measure(conn, template, record.tenant_id, record.window_end, now)
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
                     outcome="succeeded", tenant_id=record.tenant_id, correlation_id=record.trace_id,
                     details={"detail": detail})


def correction_config(record: RunRecord, requester: str) -> dict[str, Any]:
    """report_run config for a run that supersedes `record`: the same contract, trigger correction."""
    return run_config_of(record, requester=requester, trigger="correction", supersedes=record.run_id)
