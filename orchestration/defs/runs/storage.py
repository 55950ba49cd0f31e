"""Dagster's Postgres storage with its connections kept open, shared by every instance of a process.

dagster-postgres opens a new connection for every statement by default (SQLAlchemy's NullPool):
right for a short-lived run process, costly for the long-lived ones. Each new connection is a
new server process, about 4 ms of the machine's CPU on this kind of machine against 0.03 ms for a
statement on an open one. The daemon dequeues every queued run with a dozen statements and scans
the queue every second, and the code server's sensors read the event log: during a month-end
fan-out that was about 30 new connections per report run. The webserver avoids this for itself
(`optimize_for_webserver`); this storage does it for every process that loads the instance.

The engines are shared by all instances a process builds (per storage kind and URL): a process
holds at most a few idle connections however many instances it makes, and nothing waits on an
instance being garbage-collected to give a connection back. A forked child builds its own (the
key includes the pid): a connection is never shared across processes.
"""

from __future__ import annotations

import os
import threading

from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

POOL_SIZE = 2  # idle connections kept per storage kind (runs, event log, schedules)
MAX_OVERFLOW = 8  # more at once (the daemon's threads), closed when given back
POOL_RECYCLE_SECONDS = 3600

_engines: dict[tuple[int, str, str], object] = {}
_lock = threading.Lock()


def shared_engine(kind: str, postgres_url: str, token_provider=None):
    """This process's pooled engine for one storage kind and URL."""
    key = (os.getpid(), kind, postgres_url)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = create_pg_engine(postgres_url, token_provider, isolation_level="AUTOCOMMIT",
                                      pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW,
                                      pool_recycle=POOL_RECYCLE_SECONDS, pool_pre_ping=True)
            _engines[key] = engine
        return engine


class PooledPostgresStorage(DagsterPostgresStorage):
    """DagsterPostgresStorage whose run, event-log and schedule storages use the process's pooled engines."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: ConfigurableClassData | None = None, token_provider=None):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
            storage._engine = shared_engine(type(storage).__name__, postgres_url, token_provider)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PooledPostgresStorage:
        return cls(postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   inst_data=inst_data, token_provider=get_token_provider_from_config(config_value))
