"""The warm worker pool and Dagster's run queue (issue 15).

With `nexus-reports workers` and Dagster's daemon running, a CLI run goes through the queue: the
pool's submitter submits it as a Dagster `report_run` run with ad-hoc priority, the daemon
dequeues it, the run launcher hands it to a warm worker, which executes one run after another in
the same process. Without a pool, a run still starts (a detached worker), and the launch queue
serves higher priority first and gives a dead worker's claims back.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from orchestration.catalog import templates as catalog
from orchestration.db import migrations, warehouse
from orchestration.defs import dagster_home
from orchestration.runs import launches, records
from tests.helpers import cli

from ..conftest import analyst


def test_migration_head_from_file_names_is_alembics_head():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrations._config(warehouse.sqlalchemy_url()))
    assert migrations.head() == script.get_current_head()


@pytest.fixture
def clean_launches():
    def wipe():
        with warehouse.connection() as conn, conn.cursor() as cur:
            cur.execute("delete from control.run_launches; delete from control.pool_processes")
            conn.commit()
    wipe()
    yield
    wipe()


def test_launches_are_claimed_by_priority_then_age_and_a_dead_claim_returns(fresh_warehouse, clean_launches):
    with warehouse.connection() as conn:
        first = launches.enqueue(conn, "execute", dagster_run_id="scheduled-1")
        launches.enqueue(conn, "execute", dagster_run_id="scheduled-2")
        adhoc = launches.enqueue(conn, "execute", dagster_run_id="ad-hoc", priority=launches.AD_HOC_PRIORITY)
        launches.enqueue(conn, "submit", report_run_id="another-kind")
        assert launches.claim(conn, "execute").launch_id == adhoc
        claimed = launches.claim(conn, "execute")
        assert claimed.launch_id == first
        # another process of this host that is gone claims nothing back of this one's
        assert launches.release_claims_of(conn, socket.gethostname(), os.getpid() + 1) == 0
        # the claiming process (this one, as far as the table knows) is gone before finishing it
        assert launches.release_claims_of(conn, socket.gethostname(), os.getpid()) == 2
        assert launches.claim(conn, "execute").launch_id == adhoc  # back in the queue, first again
        launches.finish(conn, adhoc, "success")
        assert launches.claim(conn, "execute").launch_id == first
        assert launches.claim(conn, "execute").dagster_run_id == "scheduled-2"
        assert launches.claim(conn, "execute") is None


def test_pool_is_ready_only_with_a_live_worker_and_a_submitter_that_sees_the_queue(fresh_warehouse, clean_launches):
    with warehouse.connection() as conn:
        assert not launches.pool_state(conn).ready
        launches.beat(conn, "worker")
        assert launches.pool_state(conn) == launches.PoolState(submitters=0, workers=1)
        with conn.cursor() as cur:  # a submitter whose daemon is down does not count
            cur.execute("insert into control.pool_processes (pid, host, parent_pid, role, queue_ok) "
                        "values (1, 'elsewhere', 0, 'submitter', false)")
        conn.commit()
        assert not launches.pool_state(conn).ready
        with conn.cursor() as cur:  # nor one that stopped beating
            cur.execute("update control.pool_processes set queue_ok = true, heartbeat_at = now() - interval '1 minute' "
                        "where role = 'submitter'")
        conn.commit()
        assert not launches.pool_state(conn).ready
        with conn.cursor() as cur:
            cur.execute("update control.pool_processes set heartbeat_at = now() where role = 'submitter'")
        conn.commit()
        assert launches.pool_state(conn).ready


# ---------------------------------------------------------------- end to end: daemon, pool, CLI

@pytest.fixture(scope="module")
def pool_and_daemon(built):
    """`nexus-reports workers --processes 1` and `dagster-daemon run`, as `nexus-reports dev` starts them.
    The pool's workers sleep 30 s in the render stage of their first run (NEXUS_FAULTS, once per
    process): time to cancel it."""
    from orchestration.dev.bench_pool import pool_and_daemon

    dagster_home.prepare()
    with pool_and_daemon(1, lambda _: None, pool_env={**os.environ, "NEXUS_FAULTS": "render:sleep=30"}):
        yield


def _pool_worker_pids() -> set[int]:
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute("select pid from control.pool_processes where role = 'worker'")
        return {r[0] for r in cur.fetchall()}


def _cli_run(period: str, *extra: str):
    version = str(catalog.load("incident_summary").version)
    return cli.run("run", "incident_summary", "--version", version, "--tenant", "acme", "--period", period,
                   "--format", "csv", "--as", analyst("acme"), *extra)


def _record(run_id: str):
    with warehouse.connection() as conn:
        return records.get_run(conn, run_id)


def test_cli_runs_go_through_the_queue_to_one_warm_worker_that_survives_a_cancel(pool_and_daemon):
    import dagster as dg

    # the worker's first run sleeps in render: cancel it there
    started = _cli_run("2026-03")
    assert started.returncode == 0, started.stdout + started.stderr
    cancelled_id = started.stdout.split()[1]
    deadline = time.monotonic() + 120
    while _record(cancelled_id).stage != "render":
        assert time.monotonic() < deadline, _record(cancelled_id)
        time.sleep(0.2)
    cancel = cli.run("runs", "cancel", cancelled_id, "--as", analyst("acme"), "--wait")
    assert cancel.returncode == 0 and f"run {cancelled_id}: cancelled" in cancel.stdout, cancel.stdout + cancel.stderr
    cancelled = _record(cancelled_id)
    assert cancelled.state == "cancelled" and cancelled.artifact_location is None

    ended = []
    for period in ("2026-04", "2026-05"):
        done = _cli_run(period, "--wait")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "completed in" in done.stdout
        ended.append(_record(done.stdout.split()[1]))
    assert [r.state for r in ended] == ["completed", "completed"]
    # executed by the pool's worker, the same process every time (warm: nothing imported again),
    # which the cancel did not end
    assert {r.worker_pid for r in ended} <= _pool_worker_pids()
    assert {r.worker_pid for r in ended} == {cancelled.worker_pid}
    instance = dg.DagsterInstance.get()
    assert instance.get_run_by_id(cancelled.dagster_run_id).is_finished
    for record in ended:
        run = instance.get_run_by_id(record.dagster_run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.job_name == "report_run"
        assert run.tags["dagster/priority"] == str(launches.AD_HOC_PRIORITY)  # before a fan-out's runs
        assert "nexus/pool" in run.tags  # handed over by the run launcher
        events = [e.dagster_event.event_type_value for e in instance.all_logs(run.run_id) if e.dagster_event]
        assert "PIPELINE_ENQUEUED" in events  # it waited in Dagster's queue, under its limits


def test_a_month_end_fan_out_does_not_starve_an_ad_hoc_run(pool_and_daemon, tenant_ids):
    """Nineteen scheduled runs in the queue, then one ad-hoc run: it goes before most of them
    (its priority in the queue and in the pool, and the slots the tag limit keeps for it)."""
    import datetime as dt

    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.defs.runs import pool
    from orchestration.dev import run_bench
    from tests.conftest import SEED_END

    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("tenants", [t for t in tenant_ids if not instance.has_dynamic_partition("tenants", t)])
    keys = [t.key for t in catalog.load_all()]
    requests = run_bench.fire_month_end(instance, keys, dt.datetime.combine(SEED_END, dt.time(3), dt.UTC))
    location = pool.code_location(instance)
    scheduled = []
    for _, name, request in requests:
        run = pool.create_run(instance, location, name, {}, request.tags, partition_key=request.partition_key,
                              partitions_def=defs.resolve_job_def(name).partitions_def)
        instance.submit_run(run.run_id, workspace=None)
        scheduled.append(run.run_id)
    assert len(scheduled) >= 10
    try:
        _ad_hoc_goes_first(instance, scheduled)
    finally:  # a failure leaves no queued runs behind for the next daemon of this session
        for run in instance.get_runs(dg.RunsFilter(run_ids=scheduled)):
            if not run.is_finished:
                instance.report_run_canceled(run)


def _ad_hoc_goes_first(instance, scheduled: list[str]) -> None:
    import dagster as dg

    done = _cli_run("2026-02", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    ad_hoc = instance.get_run_by_id(_record(done.stdout.split()[1]).dagster_run_id)
    deadline = time.monotonic() + 300
    while not all(r.is_finished for r in instance.get_runs(dg.RunsFilter(run_ids=scheduled))):
        assert time.monotonic() < deadline
        time.sleep(1)
    runs = instance.get_runs(dg.RunsFilter(run_ids=scheduled))
    assert all(r.tags.get("nexus/trigger") == "schedule" for r in runs)
    records_by_start = sorted(instance.get_run_records(dg.RunsFilter(run_ids=[*scheduled, ad_hoc.run_id])),
                              key=lambda r: r.start_time)
    order = [r.dagster_run.run_id for r in records_by_start]
    # one worker: the ad-hoc run waits for the run it is executing and at most the next few
    # already handed over, never for the whole fan-out
    assert order.index(ad_hoc.run_id) <= 6, order.index(ad_hoc.run_id)
    assert len(order) - order.index(ad_hoc.run_id) - 1 >= len(scheduled) - 6


def test_a_run_whose_pool_worker_died_ends_failed_when_its_launch_comes_back(built):
    """A worker that dies mid-run gives its claim back (the parent releases it); the next worker
    finds the run started by nobody alive and ends it failed, instead of executing it twice."""
    import dagster as dg
    from dagster._core.events import DagsterEvent, DagsterEventType

    from orchestration.defs.runs import pool

    dagster_home.prepare()
    instance = dg.DagsterInstance.get()
    config = {"ops": {"execute_report_run": {"config": {"template": "incident_summary", "tenant": "acme"}}}}
    run = pool.create_run(instance, pool.code_location(instance), "report_run", config, {})
    instance.report_dagster_event(DagsterEvent(DagsterEventType.PIPELINE_STARTING.value, job_name="report_run"),
                                  run_id=run.run_id)
    instance.report_dagster_event(DagsterEvent(DagsterEventType.PIPELINE_START.value, job_name="report_run"),
                                  run_id=run.run_id)
    assert pool.execute(instance, run.run_id) == "failed: its pool worker died"
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def test_the_code_location_loads_whatever_instance_this_process_used_before(fresh_warehouse):
    """An instance used as a context manager and dropped leaves Dagster's current
    definitions-state storage pointing at it; loading the location with another still works."""
    import gc

    import dagster as dg
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    from orchestration.defs.runs import pool

    dagster_home.prepare()
    gone = dg.DagsterInstance.get()
    left = set_defs_state_storage(gone.defs_state_storage)
    left.__enter__()  # as a `with instance:` block that never exited would leave it
    try:
        del gone
        gc.collect()
        location = pool.code_location(dg.DagsterInstance.get())
        assert next(iter(location.get_repositories().values())).has_job("report_run")
    finally:
        left.__exit__(None, None, None)
