"""Dagster's instance for this product: its storage is Postgres on the warehouse's server."""

from __future__ import annotations

import os
from pathlib import Path

from orchestration.db import warehouse
from orchestration.settings import Settings, get_settings

STORAGE_URL_ENV = "NEXUS_DAGSTER_STORAGE_URL"

DAGSTER_YAML = """\
# Written by nexus-reports; the storage URL comes from the environment so that the embedded
# server's socket path or an external server's address never lands in a file.
storage:
  postgres:
    postgres_url:
      env: NEXUS_DAGSTER_STORAGE_URL
# The queued coordinator, checking a report launch (requester, template, tenant, window) before
# the run starts: a refused launch fails with one line and no step runs.
run_coordinator:
  module: orchestration.defs.runs.coordinator
  class: NexusRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: 4
  pools:
    default_limit: 4
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
    os.environ.update(warehouse.dbt_env(settings))
    return home
