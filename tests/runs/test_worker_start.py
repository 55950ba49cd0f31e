"""Starting workers (issue 12): two workers started at the same moment on a fresh Dagster storage
both run their reports, and a queued run whose worker is gone, or that no worker started, is
ended by the reaper with a diagnosis instead of waiting forever."""

from __future__ import annotations

import datetime as dt
import secrets
import socket
import subprocess
import sys
import threading

import psycopg2
import pytest

from orchestration.catalog import templates as catalog
from orchestration.db import warehouse
from orchestration.db.server import create_database_if_missing, database_url
from orchestration.defs import dagster_home
from orchestration.runs import records, supervisor, worker
from orchestration.services import runs as run_service
from tests.helpers.audit import audit_log

from ..conftest import PERIOD, analyst

RETRIED = "Retrying failed database creation"  # dagster-postgres, when another process creates the same tables


def _admit(conn, tenant: str, template: str = "incident_summary", **extra) -> str:
    # The system template's own version: other test modules approve newer versions of it that
    # their own tests expect to fail Gate B.
    return run_service.submit(conn, run_service.RunSubmission(
        template_key=template, version=catalog.load(template).version, tenant_id=tenant, requester=analyst(tenant),
        period=PERIOD, **extra))


@pytest.fixture
def fresh_dagster_storage(monkeypatch):
    """A Dagster storage database nobody has used yet (the workers inherit the environment)."""
    name = f"nexus_dagster_fresh_{secrets.token_hex(4)}"
    monkeypatch.setenv("REPORTS_DAGSTER_DATABASE", name)
    yield name
    conn = psycopg2.connect(database_url())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'drop database if exists "{name}" with (force)')
    conn.close()
    dagster_home.prepare()  # the session's own storage again, for the tests that follow


def test_two_workers_started_at_once_on_fresh_storage_both_complete(built, fresh_dagster_storage):
    with warehouse.connection() as conn:
        run_ids = [_admit(conn, "acme"), _admit(conn, "globex")]
    children = [worker.spawn(run_id) for run_id in run_ids]  # together, as a batch's members are
    for child in children:
        child.wait(timeout=300)
    with warehouse.connection() as conn:
        ended = {run_id: records.get_run(conn, run_id) for run_id in run_ids}
    assert {r: (e.state, e.diagnosis) for r, e in ended.items()} == dict.fromkeys(run_ids, ("completed", None))
    assert [e.worker_pid for e in ended.values()] == [c.pid for c in children]
    # Only one of them created the storage: neither had to retry over the other's tables.
    logs = {run_id: supervisor.worker_log(run_id).read_text() for run_id in run_ids}
    assert [r for r, text in logs.items() if RETRIED in text] == []
    with psycopg2.connect(database_url(), dbname=fresh_dagster_storage) as dconn, dconn.cursor() as cur:
        cur.execute("select count(*) from runs where status = 'SUCCESS'")
        assert cur.fetchone()[0] == 2


def test_a_queued_run_whose_worker_exited_before_starting_it_is_reaped(built):
    with warehouse.connection() as conn:
        dead = _admit(conn, "initech")
        waiting = _admit(conn, "initech", template="sla_performance")
        # A worker that dies before it starts the run (here: at once, saying why), and one still starting.
        log = supervisor.worker_log(dead)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            gone = subprocess.Popen([sys.executable, "-c", "print('DagsterPostgresException: too many retries')"],
                                    stdout=out)
        gone.wait()
        alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            records.note_worker(conn, dead, gone.pid, socket.gethostname())
            records.note_worker(conn, waiting, alive.pid, socket.gethostname())
            reaped = supervisor.reap(conn)
            assert dead in reaped and waiting not in reaped
            ended = records.get_run(conn, dead)
            assert ended.state == "failed" and ended.failure_class == "query_failure"
            assert f"worker process {gone.pid} exited before it started the run" in ended.diagnosis
            assert "too many retries" in ended.diagnosis
            assert records.get_run(conn, waiting).state == "queued"
            assert audit_log(conn, "action", "outcome", target=dead)[-1] == ("run.failed", "failed")
        finally:
            alive.kill()
            alive.wait()
        supervisor.end_unsuccessfully(conn, waiting, "cancelled", "test cleanup")


def test_a_queued_run_no_worker_started_is_reaped_after_the_grace_period(built):
    with warehouse.connection() as conn:
        orphan = _admit(conn, "initech", template="incident_summary")
        assert orphan not in supervisor.reap(conn)  # just admitted: a worker may still come
        later = dt.datetime.now(dt.UTC) + supervisor.QUEUED_GRACE + dt.timedelta(seconds=5)
        assert orphan in supervisor.reap(conn, now=later)
        ended = records.get_run(conn, orphan)
        assert ended.state == "failed" and "no worker started the run within 10 minutes" in ended.diagnosis



def test_creating_the_same_database_at_once_is_not_an_error(built):
    """What a worker does first on a fresh server (Dagster's storage database): at the same moment
    in several processes, one creates it and the others find it, none fails."""
    name = f"nexus_created_at_once_{secrets.token_hex(4)}"
    gate, errors = threading.Barrier(4), []

    def create():
        gate.wait()
        try:
            create_database_if_missing(database_url(), name)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(repr(exc))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conn = psycopg2.connect(database_url())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("select count(*) from pg_database where datname = %s", (name,))
        created = cur.fetchone()[0]
        cur.execute(f'drop database if exists "{name}"')
    conn.close()
    assert (errors, created) == ([], 1)
