"""Dagster's instance for this product: its storage is Postgres on the warehouse's server.

The storage's tables are created once, under a lock. Dagster creates them when an instance is
first built on an empty database; processes that build one at the same moment (the workers of a
batch's members, started together on a fresh deployment) race to create the same tables.
dagster-postgres retries a few times, then gives up, and a worker that gives up exits before its
run starts (its run stayed queued: issue 12). So `prepare` builds the instance once while holding
a Postgres advisory lock, on the storage's own server, so workers on other hosts wait too; once
the tables are there, no lock is taken.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestration.db import warehouse
from orchestration.settings import Settings, get_settings

STORAGE_URL_ENV = "NEXUS_DAGSTER_STORAGE_URL"
COMPUTE_LOG_DIR_ENV = "NEXUS_COMPUTE_LOG_DIR"

DAGSTER_YAML = """\
# Written by nexus-reports; the storage URL comes from the environment so that the embedded
# server's socket path or an external server's address never lands in a file.
# Connections kept open and shared within a process (defs/runs/storage.py): by default every
# statement of the daemon and the code server would open a new one.
storage:
  custom:
    module: orchestration.defs.runs.storage
    class: PooledPostgresStorage
    config:
      postgres_url:
        env: NEXUS_DAGSTER_STORAGE_URL
# The queued coordinator, checking a report launch (requester, template, tenant, window) before
# the run starts: a refused launch fails with one line and no step runs. The queue is looked at
# every second (Dagster's default is 5), so an ad-hoc run waits a second at most to be dequeued.
run_coordinator:
  module: orchestration.defs.runs.coordinator
  class: NexusRunCoordinator
  config:
    dequeue_interval_seconds: 1
# Dequeued runs go to the warm worker pool (`nexus-reports workers`) when one is running, else
# to a process of their own as with Dagster's default launcher.
run_launcher:
  module: orchestration.defs.runs.launcher
  class: WarmPoolRunLauncher
# Eight runs in progress (the pool's workers run two at a time and hold the next ones ready);
# scheduled runs take at most six of them, so a month-end fan-out never starves ad-hoc runs,
# which also go first in the queue (dagster/priority) and in the pool.
concurrency:
  runs:
    max_concurrent_runs: 8
    tag_concurrency_limits:
      - key: nexus/trigger
        value: schedule
        limit: 6
  pools:
    default_limit: 4
# A run's stdout and stderr in files the UI shows, as Dagster's default keeps them, but without
# the console mirror's four processes per capture (defs/runs/compute_logs.py).
compute_logs:
  module: orchestration.defs.runs.compute_logs
  class: CapturedComputeLogManager
  config:
    base_dir:
      env: NEXUS_COMPUTE_LOG_DIR
telemetry:
  enabled: false
"""


def prepare(settings: Settings | None = None) -> Path:
    """Write $DAGSTER_HOME/dagster.yaml and export what Dagster's processes need."""
    settings = settings or get_settings()
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() != DAGSTER_YAML:
        # Atomically: workers started together (a pipeline's members) must never read a half-written file.
        partial = config.with_name(f".dagster.yaml.{os.getpid()}")
        partial.write_text(DAGSTER_YAML)
        os.replace(partial, config)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["NEXUS_HOME"] = str(settings.home)
    os.environ[STORAGE_URL_ENV] = warehouse.dagster_storage_url(settings)
    os.environ[COMPUTE_LOG_DIR_ENV] = str(home / "storage")  # where Dagster's default keeps them
    os.environ.update(warehouse.dbt_env(settings))
    ensure_storage(settings)
    return home


# What an instance's first build leaves (run, event log and schedule storage, and the stamp).
STORAGE_TABLES = ("runs", "instance_info", "event_logs", "jobs", "alembic_version")
# pg_advisory_lock key: "nexus-reports dagster storage", any fixed number unique to this use
STORAGE_LOCK = 0x6E657875_5F646167


def ensure_storage(settings: Settings | None = None) -> bool:
    """Create Dagster's storage tables unless they exist, one process at a time; True when this
    call created them. Needs `prepare`'s environment (DAGSTER_HOME, the storage URL)."""
    conn = warehouse.dagster_storage_connection(settings or get_settings())
    try:
        if not warehouse.missing_tables(conn, STORAGE_TABLES):
            return False
        warehouse.advisory_lock(conn, STORAGE_LOCK)  # released when this session ends
        if not warehouse.missing_tables(conn, STORAGE_TABLES):  # another process created them while we waited
            return False
        import dagster as dg

        with dg.DagsterInstance.get() as instance:  # building it creates the tables
            instance.get_runs(limit=1)
        return True
    finally:
        conn.close()
