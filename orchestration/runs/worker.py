"""The worker process an ad-hoc run executes in, and following a run from another process.

`nexus-reports run` admits the run, then starts `nexus-reports runs execute RUN` as a detached
child that executes the `report_run` job on the Dagster instance (the UI shows it with its
logs); the CLI returns at once or follows with --wait, and a cancel reaches the worker by pid.

The worker's pid and host are on the queued run as soon as it is spawned, and what it prints
goes to $NEXUS_HOME/logs/workers/RUN.log: a worker that exits before it starts its run is seen
by the reaper (runs/supervisor.reap), which ends the run with the log's last line as diagnosis.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from orchestration.db import warehouse
from orchestration.runs import launches, records, supervisor
from orchestration.runs.run_record import RunRecord, worker_alive


def launch(run_id: str, *, priority: int = launches.AD_HOC_PRIORITY) -> None:
    """Start an admitted run. With a warm worker pool running (`nexus-reports workers`) and
    Dagster's daemon serving the run queue, the run goes through the queue: the pool's submitter
    submits it as a Dagster run (ad-hoc priority), the daemon dequeues it within its limits, a
    warm worker executes it. Otherwise a detached worker process of its own executes it at once,
    outside the queue (a machine with no daemon: the demo, the tests, a bare CLI). A schedule's
    runs pass priority 0, so ad-hoc runs go first."""
    with warehouse.connection() as conn:
        if launches.pool_state(conn).ready:
            launches.enqueue(conn, "submit", report_run_id=run_id, priority=priority)
            return
    spawn(run_id)


def launch_scheduled(run_id: str) -> None:
    """`launch` for a schedule's tick: behind ad-hoc runs in the queue."""
    launch(run_id, priority=0)


def spawn(run_id: str) -> subprocess.Popen:
    """Execute a queued run in a detached child process that outlives this command; its pid is
    noted on the queued run at once."""
    cli = Path(sys.executable).parent / "nexus-reports"
    path = supervisor.worker_log(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as log:  # the child holds its own descriptor; ours closes here
        child = subprocess.Popen([str(cli), "runs", "execute", run_id], stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True, env=os.environ.copy())
    with warehouse.connection() as conn:
        records.note_worker(conn, run_id, child.pid, socket.gethostname())
    return child


def settle_imports() -> None:
    """Take what a worker has imported and built so far (Dagster, GX, WeasyPrint: some 400,000
    objects that live as long as the process) out of the garbage collector's walks: every full
    collection during a run would traverse them again, about a fifth of a small run's CPU.
    For worker processes only, once: what is frozen is never collected, so a long-lived process
    that froze again and again would keep each run's garbage cycles."""
    if gc.get_freeze_count():
        return
    gc.collect()
    gc.freeze()


def follow(conn, run_id: str, echo: Callable[[str], None], *, poll: float = 0.1,
           timeout: float | None = None) -> RunRecord:
    """Print each stage as the run reaches it; return the ended record."""
    seen = None
    started = time.monotonic()
    while True:
        record = records.get_run(conn, run_id)
        if record.stage != seen and not record.ended:
            seen = record.stage
            echo(f"  {time.monotonic() - started:5.1f}s  {seen}")
        if record.ended:
            return record
        if record.state == "running" and worker_alive(record) is False:
            supervisor.reap(conn)
        if timeout and time.monotonic() - started > timeout:
            return record
        time.sleep(poll)


def stop(record: RunRecord) -> None:
    """Reach a running run's worker: SIGTERM by pid on this host, and Dagster's terminate."""
    signal_worker(record)
    _terminate_in_dagster(record.dagster_run_id)


def signal_worker(record: RunRecord) -> None:
    """SIGTERM to the process executing the run, when it is alive on this host: the run is
    cancelled there (a detached worker, or a pool worker that lives on)."""
    if worker_alive(record):
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(record.worker_pid, signal.SIGTERM)


def _terminate_in_dagster(dagster_run_id: str | None) -> None:
    """Runs the daemon launched are stopped through Dagster too (the UI's terminate)."""
    if not dagster_run_id:
        return
    try:
        import dagster as dg

        instance = dg.DagsterInstance.get()
        run = instance.get_run_by_id(dagster_run_id)
        if run is not None and not run.is_finished and instance.run_launcher.terminate(dagster_run_id):
            return
    except Exception:  # no instance here, or a launcher that cannot terminate: the flag still works
        return
