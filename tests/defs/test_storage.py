"""Dagster's storage keeps its connections open and shares them within a process
(defs/runs/storage.py): the daemon and the code server no longer open one per statement."""

from __future__ import annotations

import os
import warnings

import dagster as dg

from orchestration.db import warehouse
from orchestration.defs import dagster_home
from orchestration.defs.runs import storage


def _new_sessions_since(before: int) -> int:
    return _sessions() - before - 1  # the count's own connection


def _sessions() -> int:
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute("select sessions from pg_stat_database where datname = %s", (warehouse.dagster_database(),))
        return cur.fetchone()[0]


def test_instances_of_a_process_share_a_few_open_connections(fresh_warehouse):
    dagster_home.prepare()
    instances = [dg.DagsterInstance.get() for _ in range(3)]
    engines = {id(i._run_storage._engine) for i in instances} | {id(i._event_storage._engine) for i in instances}
    assert len(engines) == 2  # one per storage kind, whatever the number of instances
    before = _sessions()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for instance in instances:
            for _ in range(10):
                instance.get_runs(limit=5)
                instance.get_run_records(limit=2)
                instance.get_latest_materialization_event(dg.AssetKey("nothing"))
    # NullPool, Dagster's default: 90 statements, 90 new server processes
    assert _new_sessions_since(before) <= storage.POOL_SIZE * 3


def test_a_forked_child_never_uses_its_parents_connections(fresh_warehouse):
    dagster_home.prepare()
    instance = dg.DagsterInstance.get()
    instance.get_runs(limit=1)  # the parent holds an open connection now
    pid = os.fork()
    if pid == 0:  # the child: a connection of its own, or its statements would garble the parent's
        code = 1
        try:
            child = dg.DagsterInstance.get()
            child.get_runs(limit=1)
            engine = child._run_storage._engine
            code = 0 if engine is not instance._run_storage._engine else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert instance.get_runs(limit=1) is not None  # the parent's connection still works
