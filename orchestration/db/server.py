"""Which PostgreSQL server: REPORTS_DATABASE_URL, or the embedded one (pgserver), and its URL.

Every process that touches the embedded server holds a pgserver handle for its lifetime, so the
server stays up while Dagster or a command uses it and stops after the last one exits. Both the
warehouse connections and the report-context writer start from here, so neither imports the other.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg2
import psycopg2.errors

from orchestration.settings import EMBEDDED_DATABASE, Settings, get_settings

_server: Any = None  # the pgserver handle this process holds
_created: set[str] = set()  # databases this process found or created on the embedded server


def _embedded_server(settings: Settings):
    global _server
    if _server is None:
        import warnings

        settings.pgdata.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
            warnings.simplefilter("ignore")
            import pgserver  # imported lazily: external-server users never start it

            _server = pgserver.get_server(settings.pgdata, cleanup_mode="stop")
    return _server


def database_url(settings: Settings | None = None) -> str:
    """libpq URL of the warehouse database, starting the embedded server when needed."""
    settings = settings or get_settings()
    if settings.external_database_url:
        return settings.external_database_url
    server = _embedded_server(settings)
    if EMBEDDED_DATABASE not in _created:
        # Once per process: the check is a connection of its own, and a warm worker connects
        # dozens of times per run (a new server process each time, doubled by this check).
        create_database_if_missing(server.get_uri(), EMBEDDED_DATABASE)
        _created.add(EMBEDDED_DATABASE)
    return server.get_uri(EMBEDDED_DATABASE)


def create_database_if_missing(dsn: str, name: str) -> None:
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (name,))
            if cur.fetchone() is None:
                # Another process created it first: DuplicateDatabase when its CREATE had committed,
                # UniqueViolation on pg_database when both were creating it at the same moment (two
                # workers started together on a fresh server: the loser exited before its run started).
                with contextlib.suppress(psycopg2.errors.DuplicateDatabase, psycopg2.errors.UniqueViolation):
                    cur.execute(f'create database "{name}"')
    finally:
        conn.close()
