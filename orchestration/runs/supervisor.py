"""Supervising a run while it executes: checkpoints, cancel and timeout, ending it cleanly when
anything goes wrong, and reaping runs whose worker died.

Whatever ends a run unsuccessfully goes through `end_unsuccessfully`: staging files removed,
snapshot marked abandoned, record ended with class, diagnosis and guidance, one audit row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import signal
import threading
from pathlib import Path

import psycopg2

from orchestration.access import audit
from orchestration.artifacts import which_store
from orchestration.artifacts.store import StorageError, run_key, staging_location
from orchestration.db import warehouse
from orchestration.dev import faults
from orchestration.runs import records, snapshot
from orchestration.runs.failures import STAGE_CLASS, RunCancelled, RunFailed, RunInterrupted, RunTimedOut, classify
from orchestration.runs.run_record import RunRecord, worker_alive
from orchestration.settings import Settings, get_settings

_stage: dict[str, str] = {}  # run_id -> stage, for runs executing in this process


def abandon(conn, run_id: str, settings: Settings | None = None) -> None:
    """Leave nothing of an unfinished run visible: staging files removed, snapshot marked abandoned."""
    record = records.get_run(conn, run_id)
    if record is None:
        return
    settings = settings or get_settings()
    key = run_key(record.tenant_id, record.template_key, record.period, run_id)
    shutil.rmtree(staging_location(settings.artifacts_dir / key), ignore_errors=True)
    if record.stage in ("render", "publish", "done") and record.state != "completed":
        # A publish to S3 cut short: staging keys and open multipart uploads go too. When the store
        # is unreachable, what is left has no manifest, so no reader sees it.
        with contextlib.suppress(StorageError):
            which_store.get_store(settings).discard(key)
    tables = snapshot.tables_of(conn, run_id)
    if tables:
        records.update_run(conn, run_id, snapshot_state="abandoned", snapshot_tables={**record.snapshot_tables, **tables})


def end_unsuccessfully(conn, run_id: str, failure_class: str, diagnosis: str, *, settings=None,
                       retry: bool | None = None) -> RunFailed:
    """Clean up, record the class, diagnosis and guidance, audit; returns the RunFailed to raise."""
    state = "cancelled" if failure_class == "cancelled" else "failed"
    try:
        conn.rollback()  # the step may have left its transaction aborted
        _finish(conn, run_id, state, failure_class, diagnosis, settings)
    except psycopg2.Error:
        with warehouse.connection() as fresh:  # the step's own connection may be the thing that broke
            _finish(fresh, run_id, state, failure_class, diagnosis, settings)
    _stage.pop(run_id, None)
    return RunFailed(run_id, failure_class, diagnosis, retry=retry)


def _finish(conn, run_id, state, failure_class, diagnosis, settings) -> None:
    abandon(conn, run_id, settings)
    if records.finish_run(conn, run_id, state, failure_class=failure_class, diagnosis=diagnosis):
        ended = records.get_run(conn, run_id)
        audit.record_now(conn, actor="system", action=f"run.{state}", target=run_id, outcome="failed",
                         tenant_id=ended.tenant_id, correlation_id=ended.trace_id,
                         details={"run_id": run_id, "failure_class": failure_class, "diagnosis": diagnosis,
                                  **timing(ended)})


def timing(record: RunRecord) -> dict[str, float]:
    """A run outcome's timing for its audit row: seconds queued, running, and in all."""
    found: dict[str, float] = {}
    ended = record.published_at or record.ended_at
    if record.started_at:
        found["queued_seconds"] = round((record.started_at - record.created_at).total_seconds(), 3)
        if ended:
            found["running_seconds"] = round((ended - record.started_at).total_seconds(), 3)
    if ended:
        found["total_seconds"] = round((ended - record.created_at).total_seconds(), 3)
    return found


def fail(conn, run_id: str, failure_class: str, diagnosis: str, *, retry: bool | None = None) -> RunFailed:
    return end_unsuccessfully(conn, run_id, failure_class, diagnosis, retry=retry)


def fail_unless_connection_lost(conn, run_id: str, failure_class: str, exc: BaseException, what: str) -> RunFailed:
    """A step's own failure gets its class, but a lost warehouse connection is source_unavailable
    (transient, retried) in whatever stage it happens."""
    cls, diagnosis = classify(exc, failure_class)
    if cls == "source_unavailable":
        return fail(conn, run_id, cls, diagnosis)
    return fail(conn, run_id, failure_class, f"{what}: {exc}".strip())


def note_stage(run_id: str, stage: str) -> None:
    _stage[run_id] = stage


def forget(run_id: str) -> None:
    _stage.pop(run_id, None)


@contextlib.contextmanager
def guarded(conn, run_id: str, failure_class: str | None = None):
    """End the run (cleaned up, classified) when a step raises something it did not handle itself.
    Exceptions become RunFailed; interrupts from outside (Dagster terminate) propagate as they are."""
    try:
        yield
    except RunFailed:
        raise
    except BaseException as exc:
        default = failure_class or STAGE_CLASS.get(_stage.get(run_id, ""), "query_failure")
        cls, diagnosis = classify(exc, default)
        failed = end_unsuccessfully(conn, run_id, cls, diagnosis)
        if isinstance(exc, (Exception, RunInterrupted)):
            raise failed from exc
        raise


def checkpoint(conn, run_id: str, stage: str, **fault_context) -> None:
    """Progress, and the place where a cancel request or the timeout takes effect."""
    _stage[run_id] = stage
    info = records.set_stage(conn, run_id, stage)
    if info.cancel_requested:
        raise RunCancelled(f"cancelled on request (at {stage})")
    limit = info.timeout_seconds
    if limit and info.started_at and (info.now - info.started_at).total_seconds() > limit:
        raise RunTimedOut(f"exceeded the template's timeout of {limit}s (at {stage})")
    faults.hit(stage, **fault_context)


def remaining_seconds(conn, run_id: str, record: RunRecord | None = None) -> float | None:
    record = record or records.get_run(conn, run_id)
    if not record or not record.timeout_seconds or not record.started_at:
        return None
    elapsed = (dt.datetime.now(dt.UTC) - record.started_at).total_seconds()
    return max(record.timeout_seconds - elapsed, 0.001)


@contextlib.contextmanager
def interruptible(conn, run_id: str):
    """In the main thread: SIGTERM cancels the run and an alarm ends it at its timeout, raised
    wherever the step is (rendering, sleeping, between queries); queries get statement_timeout."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    record = records.get_run(conn, run_id)
    remaining = remaining_seconds(conn, run_id, record)
    limit = record.timeout_seconds

    def on_term(signum, frame):
        raise RunCancelled("cancelled on request (the worker received SIGTERM)")

    def on_alarm(signum, frame):
        raise RunTimedOut(f"exceeded the template's timeout of {limit}s")

    old_term = signal.signal(signal.SIGTERM, on_term)
    old_alarm = signal.signal(signal.SIGALRM, on_alarm)
    if remaining:
        signal.setitimer(signal.ITIMER_REAL, remaining)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGALRM, old_alarm)


# A queued run whose worker is elsewhere (or was never noted) and has not started it within this
# long never will: a worker starts its run within seconds of being spawned.
QUEUED_GRACE = dt.timedelta(minutes=10)


def reap(conn, settings: Settings | None = None, *, now: dt.datetime | None = None) -> list[str]:
    """Runs whose worker died (killed, crashed machine) end as failed with the class of the stage
    they died in, and are cleaned up. Checked on this host by pid, elsewhere by heartbeat age.
    A queued run whose worker exited before starting it, or that no worker started within
    QUEUED_GRACE, ends as failed too, with the worker's last words as diagnosis."""
    reaped = []
    now = now or dt.datetime.now(dt.UTC)
    for record in records.running_runs(conn):
        alive = worker_alive(record)
        stale = bool(record.heartbeat_at and record.timeout_seconds
                     and (now - record.heartbeat_at).total_seconds() > 2 * record.timeout_seconds)
        if alive is False or (alive is None and stale):
            cls = STAGE_CLASS.get(record.stage, "query_failure")
            how = f"worker process {record.worker_pid} died" if alive is False else "its worker stopped reporting"
            end_unsuccessfully(conn, record.run_id, cls, f"{how} during {record.stage}; nothing was published",
                               settings=settings)
            reaped.append(record.run_id)
    reaped += [r.run_id for r in records.queued_runs(conn) if reap_queued(conn, r, settings=settings, now=now)]
    return reaped


def reap_queued(conn, record: RunRecord, *, settings: Settings | None = None, now: dt.datetime | None = None) -> bool:
    """End one queued run that will never start (its worker exited first, or none came within
    QUEUED_GRACE); True when it was ended here. A batch settling its members calls it too."""
    why = _never_started(record, now or dt.datetime.now(dt.UTC), settings)
    if not why or records.get_run(conn, record.run_id).state != "queued":  # started meanwhile
        return False
    end_unsuccessfully(conn, record.run_id, "query_failure", why, settings=settings)
    return True


def _never_started(record: RunRecord, now: dt.datetime, settings: Settings | None) -> str | None:
    """Why a queued run will never start (None: it may still)."""
    if record.worker_pid and worker_alive(record) is False:
        return (f"worker process {record.worker_pid} exited before it started the run; nothing ran"
                + _last_words(record.run_id, settings))
    if not record.dagster_run_id and worker_alive(record) is None and now - record.created_at > QUEUED_GRACE:
        return (f"no worker started the run within {int(QUEUED_GRACE.total_seconds() // 60)} minutes of its "
                "admission; nothing ran" + _last_words(record.run_id, settings))
    return None


def worker_log(run_id: str, settings: Settings | None = None) -> Path:
    """Where a spawned worker's output goes (runs/worker.spawn; kept: the reaper quotes it, an operator reads it)."""
    return (settings or get_settings()).home / "logs" / "workers" / f"{run_id}.log"


def _last_words(run_id: str, settings: Settings | None) -> str:
    """The last line the run's worker wrote, if any."""
    path = worker_log(run_id, settings)
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f" (its log {path}: {lines[-1].strip()[:300]})" if lines else ""
