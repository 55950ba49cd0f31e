"""One report run as plain steps: start -> freshness -> snapshot -> Gate B -> render and publish.

Dagster's assets call these steps one by one; `run_report` calls them in a row for the worker,
the `report_run` job and tests. Every step that fails ends the run record as failed with a
classified reason and leaves nothing published.
"""

from __future__ import annotations

import time
from typing import Any

from orchestration.access import audit
from orchestration.catalog import definition_template
from orchestration.catalog.templates import Template
from orchestration.db import warehouse
from orchestration.db.warehouse import reader_connection, sqlalchemy_url
from orchestration.exports import SectionSnapshot
from orchestration.metrics import dbt_manifest
from orchestration.runs import admission, freshness, records, scope_probe, snapshot, stage_log, supervisor
from orchestration.runs.failures import RunFailed
from orchestration.runs.gate_b import GateResult, run_gate_b
from orchestration.runs.publish import Published, render_and_publish
from orchestration.runs.request import ReportRequest
from orchestration.runs.run_record import RunOrigin, RunRecord

MAX_ATTEMPTS = 3
BACKOFF_SECONDS = 1.0


def check_freshness(conn, run_id: str, template: Template, request: ReportRequest) -> None:
    """Measure the declared sources; stale ones fail the run or mark it degraded, per the template."""
    supervisor.checkpoint(conn, run_id, "freshness")
    states = freshness.measure(conn, template, request.tenant_id, request.window_end)
    fields: dict[str, Any] = {"source_watermarks": freshness.watermarks(states)}
    stale = [s for s in states if not s.fresh]
    if stale:
        reason = "stale source " + "; ".join(s.describe() for s in stale)
        if template.degraded_data == "fail":
            records.update_run(conn, run_id, **fields)
            raise supervisor.fail(conn, run_id, "source_unavailable", reason, retry=False)
        fields.update(degraded=True, degraded_reason=reason)
        audit.record_now(conn, actor="system", action="run.degraded", target=run_id, outcome="succeeded",
                         tenant_id=request.tenant_id, correlation_id=records.trace_id(conn, run_id),
                         details={"reason": reason})
    records.update_run(conn, run_id, **fields)
    stage_log.emit(f"freshness: {len(states) - len(stale)} of {len(states)} sources fresh"
                   + (f"; publishing DEGRADED: {fields['degraded_reason']}" if stale else ""))


def take_snapshot(conn, run_id: str, template: Template, request: ReportRequest) -> dict[str, SectionSnapshot]:
    supervisor.checkpoint(conn, run_id, "snapshot")
    started = time.monotonic()
    try:
        with reader_connection() as reader:
            sections = snapshot.take(conn, reader, run_id, template, request,
                                     timeout_seconds=supervisor.remaining_seconds(conn, run_id))
    except (snapshot.SnapshotError, dbt_manifest.DbtError) as exc:
        raise supervisor.fail(conn, run_id, "query_failure", str(exc)) from exc
    records.update_run(
        conn,
        run_id,
        snapshot_tables={name: s.table for name, s in sections.items()},
        row_counts={name: s.row_count for name, s in sections.items()},
        snapshot_state="frozen",
    )
    stage_log.emit(f"snapshot: {sum(s.row_count for s in sections.values()):,} rows in "
                   f"{time.monotonic() - started:.1f}s (" + ", ".join(f"{name} {s.row_count:,}" for name, s in
                                                          sections.items()) + ")")
    return sections


def sections_of(template: Template, record: RunRecord) -> dict[str, SectionSnapshot]:
    """Rebuild a run's section snapshots from its record (for steps in another process)."""
    sections = {}
    for name, table in record.snapshot_tables.items():
        section = template.section(name)
        sections[name] = SectionSnapshot(
            name=name,
            title=section.title,
            table=table,
            columns=tuple(c.as_column() for c in section.columns),
            order_by=(snapshot.ORDINAL,),
            row_count=record.row_counts[name],
        )
    return sections


def gate_b(conn, run_id: str, template: Template, request: ReportRequest, sections, *, settings=None) -> GateResult:
    supervisor.checkpoint(conn, run_id, "gate_b")
    result = run_gate_b(template, request, sections, connection_string=sqlalchemy_url(settings=settings))
    if definition_template.is_definition_key(template.key):
        with reader_connection() as reader:
            result.outcomes += scope_probe.probe(conn, reader, template, request)
    records.update_run(conn, run_id, gate_passed=result.passed, gate_summary=result.summary())
    audit.record_now(conn, actor="system", action="run.gate_b", target=run_id,
                     outcome="succeeded" if result.passed else "failed", tenant_id=request.tenant_id,
                     correlation_id=records.trace_id(conn, run_id),
                     details={"run_id": run_id, "met": result.met, "expectations": len(result.outcomes),
                              "critical_failures": len(result.critical_failures), "warnings": len(result.warnings)})
    stage_log.emit(f"Gate B: {'passed' if result.passed else 'FAILED'}, {result.met} of {len(result.outcomes)} "
                   f"expectations met ({len(result.critical_failures)} critical failures, "
                   f"{len(result.warnings)} warnings)")
    if not result.passed:
        raise supervisor.fail(conn, run_id, "validation_failed", result.diagnosis())
    return result


def run_report(template: Template, request: ReportRequest, origin: RunOrigin = RunOrigin(), *, conn=None,
               settings=None, retries: bool = True) -> Published:
    """All steps in a row, in this process. A transient failure (failures.TRANSIENT) is retried
    with exponential backoff, each attempt its own run (retry_of)."""
    while True:
        try:
            return _run_once(template, request, origin, conn=conn, settings=settings)
        except RunFailed as failed:
            if not retries or not failed.retryable or origin.attempt >= MAX_ATTEMPTS:
                raise
            time.sleep(BACKOFF_SECONDS * 2 ** (origin.attempt - 1))
            origin = origin.retried(failed.run_id)
            if conn is not None and not warehouse.usable(conn):
                conn = None  # a lost connection is not reused: the next attempt opens its own


def _run_once(template, request, origin: RunOrigin, *, conn, settings) -> Published:
    own = conn is None
    conn = conn or warehouse.connect(settings)
    try:
        run_id = admission.start(conn, template, request, origin)
        with supervisor.guarded(conn, run_id), supervisor.interruptible(conn, run_id):
            check_freshness(conn, run_id, template, request)
            sections = take_snapshot(conn, run_id, template, request)
            gate_b(conn, run_id, template, request, sections, settings=settings)
            return render_and_publish(conn, run_id, template, request, sections, settings=settings)
    finally:
        if own:
            conn.close()
