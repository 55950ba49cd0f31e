"""Run records in `control.report_runs`: the only code with SQL on them (typed as RunRecord,
which lives in runs/run_record.py).

The record is the one place that says what a run was asked to do and how it ended. Every
function that writes takes the caller's connection and commits its own statement (`_write`): a
run's progress must be visible to other processes (the CLI following a worker, a cancel, the
reaper) while the run is still going, so these writes cannot wait for the end of a larger
transaction. This is one of the few exceptions to "the service owns the transaction"
(orchestration/services/__init__.py). A read (`_read`) runs in the caller's transaction when
one is open, and otherwise ends the transaction it began, so it never leaves a connection idle
in a transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg2.extensions

from orchestration.db.warehouse import dict_rows, json_param
from orchestration.runs.failures import FAILURE_CLASSES, GUIDANCE
from orchestration.runs.request import ReportRequest
from orchestration.runs.run_record import ACTIVE_STATES, STAGES, RunOrigin, RunRecord


@contextlib.contextmanager
def _write(conn) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor whose statements are committed when it closes (rolled back on an error). Not
    `with conn:`, which cannot be entered inside a service's own `with conn:` block."""
    try:
        with conn.cursor() as cur:
            yield cur
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


@contextlib.contextmanager
def _read(conn) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor in the caller's transaction if one is open; else in one of its own, ended here."""
    if conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        with conn.cursor() as cur:
            yield cur
        return
    with _write(conn) as cur:
        yield cur


def _one(cur) -> RunRecord | None:
    rows = dict_rows(cur)
    return RunRecord.from_row(rows[0]) if rows else None


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def create_run(conn, request: ReportRequest, origin: RunOrigin, *, timeout_seconds: int | None = None,
               template: dict[str, Any] | None = None) -> tuple[str, bool]:
    """Record a run; (run_id, True). While a run of the same input hash is queued or running,
    nothing is created and that run is returned: (its run_id, False)."""
    while True:
        run_id = new_run_id()
        with _write(conn) as cur:
            cur.execute(
                """
                insert into control.report_runs
                    (run_id, dagster_run_id, template_key, template_version, tenant_id, period_key,
                     window_start, window_end, formats, requester, trigger, request, input_hash,
                     state, stage, supersedes_run_id, retry_of, attempt, timeout_seconds, schedule_id, tick_at,
                     correlation_id, template)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'queued', 'queued',
                        %s, %s, %s, %s, %s, %s, %s, %s)
                on conflict (input_hash) where state in ('queued', 'running') do nothing
                returning run_id
                """,
                (run_id, origin.dagster_run_id, request.template_key, request.template_version,
                 request.tenant_id, request.period_key, request.window_start, request.window_end,
                 list(request.formats), request.requester, request.trigger,
                 json_param(request.as_json()), request.input_hash,
                 origin.supersedes, origin.retry_of, origin.attempt, timeout_seconds, origin.schedule_id,
                 origin.tick_at, origin.correlation_id, json_param(template) if template is not None else None),
            )
            if cur.fetchone():
                return run_id, True
            cur.execute("select run_id from control.report_runs where input_hash = %s and state in ('queued', 'running')",
                        (request.input_hash,))
            row = cur.fetchone()
        if row is not None:
            return row[0], False
        # the active run ended between the two statements: try again


def mark_running(conn, run_id: str, *, dagster_run_id: str | None = None) -> None:
    """queued -> running, in this process (its pid, so a cancel can reach it, and a heartbeat)."""
    with _write(conn) as cur:
        cur.execute(
            """update control.report_runs
                  set state = 'running', stage = 'starting', started_at = coalesce(started_at, now()),
                      heartbeat_at = now(), worker_pid = %s, worker_host = %s,
                      dagster_run_id = coalesce(%s, dagster_run_id)
                where run_id = %s and state in ('queued', 'running')""",
            (os.getpid(), socket.gethostname(), dagster_run_id, run_id),
        )


@dataclass(frozen=True)
class StageCheck:
    """What a stage needs to know when it starts: a pending cancel and the deadline."""

    cancel_requested: dt.datetime | None
    started_at: dt.datetime | None
    timeout_seconds: int | None
    now: dt.datetime


def set_stage(conn, run_id: str, stage: str) -> StageCheck:
    """Record progress (and a heartbeat)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    with _write(conn) as cur:
        cur.execute(
            """update control.report_runs set stage = %s, heartbeat_at = now() where run_id = %s
               returning cancel_requested, started_at, timeout_seconds, now()""",
            (stage, run_id),
        )
        return StageCheck(*cur.fetchone())


def request_cancel(conn, run_id: str) -> RunRecord | None:
    """Flag the run for cancellation; a queued run ends at once, a running one at its next check."""
    with _write(conn) as cur:
        cur.execute(
            """update control.report_runs set cancel_requested = coalesce(cancel_requested, now())
                where run_id = %s and state in ('queued', 'running')""",
            (run_id,),
        )
    finish_run(conn, run_id, "cancelled", failure_class="cancelled", diagnosis="cancelled before it started",
               only_from=("queued",))
    return get_run(conn, run_id)


_UPDATABLE = frozenset({
    "snapshot_tables", "row_counts", "gate_passed", "gate_summary", "artifact_location", "manifest_sha256",
    "snapshot_state", "degraded", "degraded_reason", "source_watermarks", "dagster_run_id", "superseded_by",
    "late_data_at", "failed_parts",
})


def update_run(conn, run_id: str, *, cur=None, **fields: Any) -> None:
    """Set outcome fields of a run (committed now, or in the transaction of `cur` when given)."""
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    sets = ", ".join(f"{k} = %s" for k in fields)
    values = [json_param(v) if isinstance(v, (dict, list)) else v for v in fields.values()]
    sql = f"update control.report_runs set {sets} where run_id = %s"
    if cur is not None:
        cur.execute(sql, (*values, run_id))
        return
    with _write(conn) as own:
        own.execute(sql, (*values, run_id))


def finish_run(conn, run_id: str, state: str, *, failure_class: str | None = None, diagnosis: str | None = None,
               only_from: tuple[str, ...] = ACTIVE_STATES, then=None) -> bool:
    """End a run: completed, or failed/cancelled with a classified reason and retry guidance.
    Ends are final: returns False when the run had already ended. `then(cur)`, when given, runs
    in the same transaction once the run has ended here (e.g. the artifact index rows)."""
    if state in ("failed", "cancelled") and failure_class not in FAILURE_CLASSES:
        raise ValueError(f"a {state} run needs a failure class from {FAILURE_CLASSES}")
    with _write(conn) as cur:
        cur.execute(
            """
            update control.report_runs
               set state = %s, failure_class = %s, diagnosis = %s, retry_guidance = %s,
                   stage = case when %s = 'completed' then 'done' else stage end,
                   published_at = case when %s = 'completed' then now() end,
                   ended_at = now()
             where run_id = %s and state = any(%s)
            """,
            (state, failure_class if state != "completed" else None, diagnosis,
             GUIDANCE.get(failure_class) if state != "completed" else None,
             state, state, run_id, list(only_from)),
        )
        ended = cur.rowcount == 1
        if ended and then is not None:
            then(cur)
        return ended


def expire_run(cur, run_id: str) -> None:
    """completed -> expired, in the caller's transaction (the retention sweep's purge)."""
    cur.execute("update control.report_runs set state = 'expired' where run_id = %s and state = 'completed'", (run_id,))


def get_run(conn, run_id: str) -> RunRecord | None:
    with _read(conn) as cur:
        cur.execute("select * from control.report_runs where run_id = %s", (run_id,))
        return _one(cur)


def trace_id(conn, run_id: str) -> str:
    """The correlation id a run's audit rows carry (RunRecord.trace_id) without reading the whole record."""
    with _read(conn) as cur:
        cur.execute("select correlation_id from control.report_runs where run_id = %s", (run_id,))
        row = cur.fetchone()
    return (row[0] if row else None) or run_id


def run_ids_of_correlation(conn, correlation_id: str) -> list[str]:
    """The runs a request caused (usually one), oldest first."""
    with _read(conn) as cur:
        cur.execute("select run_id from control.report_runs where correlation_id = %s order by created_at, run_id",
                    (correlation_id,))
        return [row[0] for row in cur.fetchall()]


def run_for_dagster_run(conn, dagster_run_id: str, template_key: str) -> RunRecord | None:
    with _read(conn) as cur:
        cur.execute(
            """select * from control.report_runs
                where dagster_run_id = %s and template_key = %s
                order by created_at desc limit 1""",
            (dagster_run_id, template_key),
        )
        return _one(cur)


def active_runs_of_dagster_run(conn, dagster_run_id: str) -> list[str]:
    with _read(conn) as cur:
        cur.execute("select run_id from control.report_runs where dagster_run_id = %s and state in ('queued', 'running')",
                    (dagster_run_id,))
        return [r[0] for r in cur.fetchall()]


def active_run_of_schedule(conn, schedule_id: str) -> str | None:
    """A queued or running run a runtime schedule started (its overlap rule), or None."""
    with _read(conn) as cur:
        cur.execute("select run_id from control.report_runs where schedule_id = %s and state in ('queued', 'running') "
                    "limit 1", (schedule_id,))
        row = cur.fetchone()
    return row[0] if row else None


def note_worker(conn, run_id: str, pid: int, host: str) -> None:
    """The worker process started for a queued run (before it marks the run running), so the
    reaper can tell a worker that died before starting the run."""
    with _write(conn) as cur:
        cur.execute("""update control.report_runs set worker_pid = %s, worker_host = %s
                        where run_id = %s and state = 'queued'""", (pid, host, run_id))


def note_dagster_run(conn, run_id: str, dagster_run_id: str) -> None:
    """The Dagster run a queued run was submitted as (the pool's submitter), before it starts:
    a terminate or a cancelled queue entry in Dagster finds the record by it."""
    with _write(conn) as cur:
        cur.execute("""update control.report_runs set dagster_run_id = %s where run_id = %s and state = 'queued'""",
                    (dagster_run_id, run_id))


def queued_runs(conn) -> list[RunRecord]:
    with _read(conn) as cur:
        cur.execute("select * from control.report_runs where state = 'queued'")
        return [RunRecord.from_row(r) for r in dict_rows(cur)]


def running_runs(conn) -> list[RunRecord]:
    with _read(conn) as cur:
        cur.execute("select * from control.report_runs where state = 'running'")
        return [RunRecord.from_row(r) for r in dict_rows(cur)]


def list_runs(conn, *, tenant_id: str | None = None, state: str | None = None, limit: int = 20) -> list[RunRecord]:
    with _read(conn) as cur:
        cur.execute(
            """select * from control.report_runs
                where (%s::text is null or tenant_id = %s) and (%s::text is null or state = %s)
                order by created_at desc limit %s""",
            (tenant_id, tenant_id, state, state, limit),
        )
        return [RunRecord.from_row(r) for r in dict_rows(cur)]


def chain(conn, run_id: str) -> list[RunRecord]:
    """The run and every run it supersedes or is superseded by, oldest first; retries too."""
    with _read(conn) as cur:
        cur.execute(
            """with recursive up as (
                   select r.*, 0 as depth from control.report_runs r where run_id = %s
                   union all
                   select r.*, up.depth - 1 from control.report_runs r
                   join up on r.run_id = coalesce(up.supersedes_run_id, up.retry_of)
               ), down as (
                   select r.*, 0 as depth from control.report_runs r where run_id = %s
                   union all
                   select r.*, down.depth + 1 from control.report_runs r
                   join down on r.supersedes_run_id = down.run_id or r.retry_of = down.run_id
               )
               select distinct on (run_id) *
               from (select * from up union all select * from down) c
               order by run_id""",
            (run_id, run_id),
        )
        rows = dict_rows(cur)
    rows.sort(key=lambda r: (r["depth"], r["created_at"]))
    return [RunRecord.from_row(r) for r in rows]


def latest_published(conn) -> list[RunRecord]:
    """Completed runs not superseded and without a correction under way (late-data candidates)."""
    with _read(conn) as cur:
        cur.execute(
            """select * from control.report_runs r
                where state = 'completed' and superseded_by is null
                  and not exists (select 1 from control.report_runs c
                                   where c.supersedes_run_id = r.run_id and c.state in ('queued', 'running'))
                order by ended_at"""
        )
        return [RunRecord.from_row(r) for r in dict_rows(cur)]


def newest_completed(conn, template_key: str, tenant_id: str, period: str) -> RunRecord | None:
    """The newest completed, not superseded run of a template for a tenant and period."""
    with _read(conn) as cur:
        cur.execute(
            """select * from control.report_runs
                where template_key = %s and tenant_id = %s and period_key = %s and state = 'completed'
                  and superseded_by is null
                order by ended_at desc limit 1""", (template_key, tenant_id, period))
        return _one(cur)


def mark_late_data(conn, run_id: str) -> None:
    update_run(conn, run_id, late_data_at=dt.datetime.now(dt.UTC))


def completed_runs(conn, run_ids: list[str] | None = None) -> list[RunRecord]:
    """Published runs, oldest first (or only those of `run_ids`): the retention sweep's candidates."""
    with _read(conn) as cur:
        cur.execute("""select * from control.report_runs where state = 'completed' and published_at is not null
                         and (%s::text[] is null or run_id = any(%s)) order by published_at""", (run_ids, run_ids))
        return [RunRecord.from_row(r) for r in dict_rows(cur)]


def run_ids_of_template(conn, template_key: str) -> list[str]:
    """Every run of a template, any version, any tenant (links revoke by template through it)."""
    with _read(conn) as cur:
        cur.execute("select run_id from control.report_runs where template_key = %s", (template_key,))
        return [r[0] for r in cur.fetchall()]


def template_versions(conn, run_ids: list[str]) -> dict[str, tuple[str, int]]:
    """run_id -> (template key, template version) of the given runs (for listings of links)."""
    with _read(conn) as cur:
        cur.execute("select run_id, template_key, template_version from control.report_runs where run_id = any(%s)",
                    (list(run_ids),))
        return {run_id: (key, version) for run_id, key, version in cur.fetchall()}


def runs_created(conn, since: dt.datetime, until: dt.datetime, *, tenant_id: str | None = None) -> list[RunRecord]:
    """Every run created in [since, until) (of one tenant, or all): what the KPIs count."""
    with _read(conn) as cur:
        cur.execute("""select * from control.report_runs
                        where created_at >= %s and created_at < %s and (%s::text is null or tenant_id = %s)
                        order by created_at""",
                    (since, until, tenant_id, tenant_id))
        return [RunRecord.from_row(r) for r in dict_rows(cur)]


def count_by_state(conn) -> list[tuple[str, str, str, str, int]]:
    """(tenant, template, state, failure class or '', runs) over every run: the /metrics counters."""
    with _read(conn) as cur:
        cur.execute("""select tenant_id, template_key, state, coalesce(failure_class, ''), count(*)
                         from control.report_runs group by 1, 2, 3, 4 order by 1, 2, 3, 4""")
        return [tuple(r) for r in cur.fetchall()]


def ended_run_timings(conn) -> list[tuple[str, float | None, float | None]]:
    """(template, started->ended seconds of a completed run or None, tick->started seconds or None)
    of every run that started: the /metrics histograms."""
    with _read(conn) as cur:
        cur.execute("""select template_key,
                              case when state in ('completed', 'expired')
                                   then extract(epoch from ended_at - started_at)::float8 end,
                              extract(epoch from started_at - tick_at)::float8
                         from control.report_runs where started_at is not null""")
        return [tuple(r) for r in cur.fetchall()]
