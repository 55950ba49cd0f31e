"""The warm worker pool (`nexus-reports workers`): report runs executed by processes that have
everything loaded, fed by Dagster's run queue.

A run's own work is small (queries, Gate B, rendering a small report); starting a process for
it is not: importing Dagster, dbt, Great Expectations and WeasyPrint takes seconds and about
400 MB. The pool pays that once. The parent imports everything, then forks:
- one submitter: turns runs the CLI and the API admitted (control.run_launches, kind `submit`)
  into Dagster `report_run` runs and submits them to Dagster's run queue, so the queue's limits,
  tag limits and priorities apply to them as to scheduled and UI runs; it also reports whether
  the queue is served (the daemon's heartbeat), which is what a launch checks;
- N workers: execute the runs the daemon dequeued and the launcher (defs/runs/launcher.py)
  handed over (kind `execute`), one at a time each, highest priority first.
A worker leaves after `max_runs` runs or once it holds more than `max_rss_mb`, and the parent
forks a fresh one from its warm image in milliseconds: memory stays bounded through a fan-out.
A launch a dead worker had claimed but not finished goes back to the queue.
"""

from __future__ import annotations

import functools
import json
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestration.db import warehouse
from orchestration.defs.runs.execution import admitted_run_config, admitted_run_tags
from orchestration.runs import launches, records, worker
from orchestration.settings import REPO_ROOT

Echo = Callable[[str], None]
BEAT_SECONDS = 5.0
CRASH_PAUSE = 5.0  # a child that fails this soon after its start is restarted after this pause
STORAGE_STATEMENT_TIMEOUT_MS = 300_000  # Dagster storage statements of a pool process (a run's events)
LOCATION_NAME = "nexus_reports"  # as workspace.yaml names the code location


@dataclass(frozen=True)
class PoolConfig:
    processes: int = 2
    max_runs: int = 200
    max_rss_mb: int = 600


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def warm_up() -> None:
    """Import and build what every run needs, before forking: the children share these pages."""
    from orchestration.defs import dagster_home

    dagster_home.prepare()
    import importlib

    import great_expectations  # noqa: F401

    import orchestration.definitions  # noqa: F401
    from orchestration.runs import gate_b  # noqa: F401 - Great Expectations

    # The writers and checks formats.py imports on first use (WeasyPrint, openpyxl, PDFium).
    for module in ("orchestration.runs.engine", "orchestration.exports.checks", "orchestration.exports.json_export",
                   "orchestration.exports.xlsx_export", "orchestration.exports.pdf_export"):
        importlib.import_module(module)
    from orchestration.exports import pdf_export  # imported just above

    pdf_export.warm_up()  # fonts loaded and subset once, here: every forked worker has them
    worker.settle_imports()


# ---------------------------------------------------------------- the parent

def serve(config: PoolConfig, echo: Echo = print) -> None:
    """Fork the submitter and the workers; re-fork whichever exits; stop them all on SIGTERM/SIGINT."""
    warm_up()
    children: dict[int, tuple[str, float]] = {}  # pid -> (role, started)
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start(role: str) -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                (submitter if role == "submitter" else work)(config)
            except BaseException as exc:  # noqa: BLE001 - the parent starts another
                print(f"pool {role} {os.getpid()} stopped: {exc!r}", file=sys.stderr, flush=True)
                code = 1
            finally:
                os._exit(code)
        children[pid] = (role, time.monotonic())

    start("submitter")
    for _ in range(config.processes):
        start("worker")
    echo(f"worker pool: {config.processes} workers and a submitter, warm at {rss_mb():.0f} MB "
         f"(pid {os.getpid()}); a worker is replaced after {config.max_runs} runs or {config.max_rss_mb} MB")
    while not stopping:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            pid = 0
        if pid and pid in children:
            role, started = children.pop(pid)
            with warehouse.connection() as conn:
                launches.release_claims_of(conn, socket.gethostname(), pid)
                launches.leave(conn, pid)
            if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
                echo(f"pool {role} {pid} ended abnormally (status {status}); starting another")
                if time.monotonic() - started < CRASH_PAUSE:  # failing at once: do not spin
                    time.sleep(CRASH_PAUSE)
            if not stopping:
                start(role)
            continue
        time.sleep(0.2)
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    for pid in list(children):
        os.waitpid(pid, 0)
    with warehouse.connection() as conn:
        launches.forget_pool(conn, os.getpid())
    echo("worker pool stopped")


def _listening():
    conn = warehouse.connect()
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute(f"listen {launches.CHANNEL}")
    conn.commit()
    return conn


def _wait(conn, seconds: float) -> None:
    """Sleep until a launch is notified or `seconds` pass."""
    if not conn.notifies:
        select.select([conn], [], [], seconds)
        conn.poll()
    conn.notifies.clear()


# ---------------------------------------------------------------- a worker

def pooled_instance():
    """This long-lived process's Dagster instance, its storage connections kept open: by default
    dagster-postgres opens a new connection for every statement (about twenty per run, each a new
    server process), which suits short-lived run processes, not a warm one. The same switch the
    webserver makes for itself (with its own statement timeout, whatever storage dagster.yaml
    names). Its runs' stdout and stderr go to the compute log files only."""
    import dagster as dg

    from orchestration.defs.runs.compute_logs import CapturedComputeLogManager

    instance = dg.DagsterInstance.get()
    instance.optimize_for_webserver(statement_timeout=STORAGE_STATEMENT_TIMEOUT_MS, pool_recycle=3600, max_overflow=4)
    if isinstance(instance.compute_log_manager, CapturedComputeLogManager):
        instance.compute_log_manager.mirror = False  # no console to echo a run's output on: no processes for it
    return instance


def work(config: PoolConfig) -> None:
    """Execute handed-over Dagster runs until recycled."""
    instance = pooled_instance()
    conn = _listening()
    done, beaten = 0, 0.0
    while True:
        if time.monotonic() - beaten > BEAT_SECONDS:
            launches.beat(conn, "worker", runs_done=done)
            beaten = time.monotonic()
        launch = launches.claim(conn, "execute")
        if launch is None:
            _wait(conn, BEAT_SECONDS)
            continue
        outcome = execute(instance, launch.dagster_run_id)
        launches.finish(conn, launch.launch_id, outcome)
        done += 1
        if done >= config.max_runs or rss_mb() > config.max_rss_mb:
            launches.leave(conn)
            return


def execute(instance, dagster_run_id: str) -> str:
    """Execute one launched Dagster run here, as `dagster api execute_run` would in a new process."""
    import dagster as dg
    from dagster._grpc.impl import core_execute_run
    from dagster._utils.hosted_user_process import recon_job_from_origin

    run = instance.get_run_by_id(dagster_run_id)
    if run is None:
        return "no such Dagster run"
    if run.status == dg.DagsterRunStatus.CANCELING:
        instance.report_run_canceled(run, message="terminated before a pool worker started it")
        return "cancelled before it started"
    if run.status == dg.DagsterRunStatus.STARTED:
        # Only a launch whose worker died after starting it comes back to the queue with its run
        # started: the run ends failed in Dagster (its report run is ended by the reaper, by pid).
        instance.report_run_failed(run, message="its pool worker died while executing it")
        return "failed: its pool worker died"
    if run.status != dg.DagsterRunStatus.STARTING:
        return f"not started: the run is {run.status.value}"
    instance.report_engine_event(f"executing in pool worker {os.getpid()} on {socket.gethostname()}", run)
    failed = False
    try:
        for event in core_execute_run(recon_job_from_origin(run.job_code_origin), run, instance,
                                      inject_env_vars=True):
            failed = failed or event.event_type_value == "PIPELINE_FAILURE"
    except Exception as exc:  # noqa: BLE001 - core_execute_run reported it on the run
        return f"error: {exc}"
    return "failure" if failed else "success"


# ---------------------------------------------------------------- the submitter

def submitter(config: PoolConfig) -> None:
    """Submit admitted runs to Dagster's run queue; beat with whether the queue is served."""
    instance = pooled_instance()
    location = code_location(instance)
    conn = _listening()
    beaten = 0.0
    while True:
        if time.monotonic() - beaten > BEAT_SECONDS:
            launches.beat(conn, "submitter", queue_ok=queue_served(instance))
            beaten = time.monotonic()
        launch = launches.claim(conn, "submit")
        if launch is None:
            _wait(conn, BEAT_SECONDS)
            continue
        try:
            dagster_run_id = submit_admitted(instance, location, conn, launch.report_run_id, launch.priority)
            outcome = f"submitted as Dagster run {dagster_run_id}"
        except Exception as exc:  # noqa: BLE001 - the run falls back to a worker of its own
            worker.spawn(launch.report_run_id)
            outcome = f"not submitted ({exc}); started a detached worker instead"
        launches.finish(conn, launch.launch_id, outcome)


def queue_served(instance) -> bool:
    """The daemon's run queue is served: its heartbeat is recent."""
    from dagster._daemon.controller import get_daemon_statuses
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    try:
        kind = QueuedRunCoordinatorDaemon.daemon_type()
        return get_daemon_statuses(instance, [kind], ignore_errors=True)[kind].healthy is True
    except Exception:  # noqa: BLE001 - no heartbeat table yet, storage unreachable: not served
        return False


def code_location(instance):
    """This process's code location (loaded in process), named as workspace.yaml names it, so runs
    submitted from here show up in the UI under their job."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.storage.defs_state.base import set_defs_state_storage
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    origin = InProcessCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(executable_path=sys.executable, module_name="orchestration.definitions",
                                                    working_directory=str(REPO_ROOT)),
        location_name=LOCATION_NAME)
    # Loading reads Dagster's "current" definitions-state storage (a context variable an instance
    # sets while used as a context manager): make it this instance's, whatever another instance
    # of this process left there.
    with set_defs_state_storage(instance.defs_state_storage):
        return origin.create_location(instance)


def submit_admitted(instance, location, conn, report_run_id: str, priority: int) -> str:
    """One admitted run as a queued Dagster `report_run` run (config run_id: the worker executes
    the admitted record, as the detached worker does)."""
    record = records.get_run(conn, report_run_id)
    conn.commit()
    run = create_run(instance, location, "report_run", admitted_run_config(record),
                     {**admitted_run_tags(record), "dagster/priority": str(priority)})
    with warehouse.connection() as own:  # the run record names its Dagster run at once
        records.note_dagster_run(own, report_run_id, run.run_id)
    instance.submit_run(run.run_id, workspace=None)
    return run.run_id


def create_run(instance, location, job_name: str, run_config: dict, tags: dict, *, partition_key: str | None = None,
               partitions_def=None):
    """A Dagster run of one of this code location's jobs, with its snapshots and origins, as
    Dagster's own `job launch` and the scheduler create it."""
    repo, remote_job, snapshot = _job_and_plan(instance, location, job_name, json.dumps(run_config, sort_keys=True))
    if partition_key is not None:  # dagster/partition and, for a tenant x period key, each dimension's tag
        tags = {**tags, **(partitions_def.get_tags_for_partition_key(partition_key) if partitions_def else
                           {"dagster/partition": partition_key})}
    return instance.create_run(
        job_name=job_name, run_id=None, run_config=run_config, resolved_op_selection=None,
        step_keys_to_execute=snapshot.step_keys_to_execute, op_selection=None, status=None, root_run_id=None,
        parent_run_id=None, tags={**remote_job.tags, **tags}, job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=snapshot, parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(), job_code_origin=remote_job.get_python_origin(),
        asset_selection=None, asset_check_selection=None, asset_graph=repo.asset_graph)


@functools.lru_cache(maxsize=256)
def _job_and_plan(instance, location, job_name: str, run_config_json: str):
    """The remote job and its execution plan snapshot, per job and config: the plan of a month-end
    fan-out's 200 runs of one job is the same plan (the partition is a tag), built once."""
    from dagster._core.definitions.selector import JobSubsetSelector

    repo = next(iter(location.get_repositories().values()))
    remote_job = location.get_job(JobSubsetSelector(location_name=location.name, repository_name=repo.name,
                                                    job_name=job_name, op_selection=None))
    plan = location.get_execution_plan(remote_job, json.loads(run_config_json), step_keys_to_execute=None,
                                       known_state=None, instance=instance)
    return repo, remote_job, plan.execution_plan_snapshot
