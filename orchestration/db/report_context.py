"""Report contexts: the tenant of a report transaction, written where the report query cannot.

Row-level security asks `rls.report_tenant()` (migration 0010) for the tenant. It answers only
for a context row that the admin connection wrote for the calling report_reader backend (pid
and backend start) and that the transaction names by its random token in `app.report_context`.
The reporting role cannot write `control`, so a query that sets the token, or `app.tenant_id`,
to anything else finds no context and sees no rows.

A context may also carry a `ReaderScope` (migration 0012): the verticals and regions the query
may see and whether consent-withdrawn subjects may be included. The governed entity models'
policies read them through rls.report_verticals(), rls.report_geo_scopes() and
rls.report_include_withdrawn(); the reader can no more change them than its tenant.

The rows are written and removed on a dedicated autocommit admin connection (one per process
and thread), never on a caller's connection: a caller may be in the middle of its own
transaction, and the context must be committed before the report query can see it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass

import psycopg2
import psycopg2.extensions

from orchestration.db.server import database_url

CONTEXT_SETTING = "app.report_context"
READER_ROLE = "report_reader"
_log = logging.getLogger(__name__)

# Binds the context to the reader's backend as the admin sees it in pg_stat_activity (only a
# report_reader session qualifies), and forgets contexts of backends that have ended: a process
# killed inside a report transaction never got to delete its row.
_OPEN = """
with gone as (
    delete from control.report_contexts c
    where not exists (select 1 from pg_stat_activity a
                      where a.pid = c.backend_pid and a.backend_start = c.backend_start)
)
insert into control.report_contexts (backend_pid, backend_start, tenant_id, verticals, geo_scopes, include_withdrawn)
select a.pid, a.backend_start, %s, %s, %s, %s from pg_stat_activity a
where a.pid = %s and a.usename = %s and a.backend_start is not null
returning token
"""
_CLOSE = "delete from control.report_contexts where token = %s"


_SCOPE_VALUE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class ReaderScope:
    """What a report query may see within its tenant, besides the tenant itself.

    None: no restriction on that dimension. An empty tuple is refused rather than read as
    "nothing" or "everything": say None for unrestricted. include_withdrawn is for root only
    (policy action `include_withdrawn`); the caller checks that before asking for it.
    """

    verticals: tuple[str, ...] | None = None
    geo_scopes: tuple[str, ...] | None = None
    include_withdrawn: bool = False

    def __post_init__(self) -> None:
        for name in ("verticals", "geo_scopes"):
            values = getattr(self, name)
            if values is None:
                continue
            if isinstance(values, str) or not isinstance(values, tuple) or not values:
                raise ValueError(f"{name} must be a non-empty tuple of names, or None for no restriction; got {values!r}")
            bad = [v for v in values if not isinstance(v, str) or not _SCOPE_VALUE.match(v)]
            if bad:
                raise ValueError(f"{name}: {bad!r} are not names (lowercase letters, digits, '_')")
        if not isinstance(self.include_withdrawn, bool):
            raise ValueError(f"include_withdrawn must be a bool, got {self.include_withdrawn!r}")


UNRESTRICTED = ReaderScope()


class ContextError(RuntimeError):
    """No context could be bound to the connection (not a report_reader backend, or unseen)."""


class _Writer:
    """The admin connection that writes contexts: per process (a forked child reconnects) and thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _connection(self) -> psycopg2.extensions.connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or getattr(self._local, "pid", None) != os.getpid():
            conn = psycopg2.connect(database_url(), application_name="nexus-reports-context")
            conn.autocommit = True
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def execute(self, sql: str, params: tuple) -> tuple | None:
        """One autocommit statement; a dropped connection (restart, failover) is reopened once."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                with conn.cursor() as cur:
                    cur.execute(sql, params)
                    return cur.fetchone() if cur.description else None
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                conn.close()
                if attempt == 2:
                    raise
        return None  # unreachable


_writer = _Writer()


def open_context(backend_pid: int, tenant_id: str, scope: ReaderScope | None = None) -> str:
    """Write a context for the report_reader backend `backend_pid`; returns its token."""
    scope = scope or UNRESTRICTED
    verticals = sorted(set(scope.verticals)) if scope.verticals is not None else None
    geo_scopes = sorted(set(scope.geo_scopes)) if scope.geo_scopes is not None else None
    row = _writer.execute(_OPEN, (tenant_id, verticals, geo_scopes, scope.include_withdrawn, backend_pid, READER_ROLE))
    if row is None:
        raise ContextError(
            f"report queries must run on a {READER_ROLE} connection, and the admin role must see it in "
            "pg_stat_activity (superuser or pg_read_all_stats)"
        )
    return row[0]


def close_context(token: str) -> None:
    """Remove a context. Best effort: a row left behind is bound to its backend, named by a token
    that lived only in the ended transaction, and purged once that backend ends."""
    try:
        _writer.execute(_CLOSE, (token,))
    except psycopg2.Error as exc:
        _log.warning("report context not removed (purged when its backend ends): %s", type(exc).__name__)
