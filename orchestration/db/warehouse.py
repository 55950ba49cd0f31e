"""The PostgreSQL warehouse: how to connect, and the reporting role (the server itself: db/server.py).

Report queries never run as the connecting user: `reader_transaction` runs them on a
`report_reader` login (no ownership, no BYPASSRLS) in a READ ONLY transaction whose tenant is
a context the admin wrote for that backend (see report_context).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from orchestration.db import report_context
from orchestration.db.server import create_database_if_missing, database_url
from orchestration.settings import Settings, get_settings

READER_ROLE = "report_reader"
# rls holds the report-context function the row-level policies call (migration 0010)
SCHEMAS = ("raw", "staging", "analytics", "control", "snapshots", "rls")
READER_PASSWORD_ENV = "REPORTS_READER_PASSWORD"
_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

class WarehouseError(RuntimeError):
    """A problem a user can act on (bad URL, server unreachable, no tenant)."""


def connection_params(settings: Settings | None = None) -> dict[str, str]:
    """host/port/user/password/dbname of the warehouse, for dbt's profile and Dagster's storage."""
    params = psycopg2.extensions.parse_dsn(database_url(settings))
    return {
        "host": params.get("host", "127.0.0.1"),
        "port": str(params.get("port", "5432")),
        "user": params.get("user", "postgres"),
        "password": params.get("password", ""),
        "dbname": params.get("dbname", "postgres"),
    }


def sqlalchemy_url(dbname: str | None = None, settings: Settings | None = None) -> str:
    """An explicit psycopg2 SQLAlchemy URL (a bare postgresql:// means psycopg 3 in SQLAlchemy 2.1)."""
    p = connection_params(settings)
    auth = quote(p["user"]) + (":" + quote(p["password"]) if p["password"] else "")
    db = dbname or p["dbname"]
    if p["host"].startswith("/"):
        return f"postgresql+psycopg2://{auth}@/{db}?host={quote(p['host'])}&port={p['port']}"
    return f"postgresql+psycopg2://{auth}@{p['host']}:{p['port']}/{db}"


def dagster_database(settings: Settings | None = None) -> str:
    """The database of Dagster's own storage, beside the warehouse on the same server."""
    return (settings or get_settings()).dagster_database or f"{connection_params(settings)['dbname']}_dagster"


def dagster_storage_connection(settings: Settings | None = None) -> psycopg2.extensions.connection:
    """An autocommit connection to Dagster's storage database (defs/dagster_home.py prepares it with it)."""
    conn = psycopg2.connect(database_url(settings), dbname=dagster_database(settings),
                            application_name="nexus-reports dagster storage")
    conn.autocommit = True
    return conn


def missing_tables(conn, names: tuple[str, ...], schema: str = "public") -> list[str]:
    """Which of these tables do not exist (yet) in the connection's database."""
    with conn.cursor() as cur:
        cur.execute("select t from unnest(%s::text[]) t where to_regclass(quote_ident(%s) || '.' || quote_ident(t)) is null",
                    (list(names), schema))
        return [r[0] for r in cur.fetchall()]


def advisory_lock(conn, key: int) -> None:
    """Wait for a session-level advisory lock (released when the session ends)."""
    with conn.cursor() as cur:
        cur.execute("select pg_advisory_lock(%s)", (key,))


def dagster_storage_url(settings: Settings | None = None) -> str:
    """Dagster's own storage: a database beside the warehouse on the same server."""
    name = dagster_database(settings)
    create_database_if_missing(database_url(settings), name)
    return sqlalchemy_url(name, settings)


def dbt_env(settings: Settings | None = None) -> dict[str, str]:
    """Environment variables read by dbt_project/profiles.yml."""
    p = connection_params(settings)
    return {
        "NEXUS_PG_HOST": p["host"],
        "NEXUS_PG_PORT": p["port"],
        "NEXUS_PG_USER": p["user"],
        "NEXUS_PG_PASSWORD": p["password"],
        "NEXUS_PG_DBNAME": p["dbname"],
    }


def connect(settings: Settings | None = None, **kwargs: Any) -> psycopg2.extensions.connection:
    url = database_url(settings)
    try:
        return psycopg2.connect(url, application_name="nexus-reports", **kwargs)
    except psycopg2.OperationalError as exc:
        raise WarehouseError(f"cannot connect to the warehouse ({_redact(url)}): {exc}".strip()) from exc


def _redact(url: str) -> str:
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", url)


def connection(settings: Settings | None = None) -> contextlib.closing:
    """An admin connection, closed when the with-block ends."""
    return contextlib.closing(connect(settings))


@contextlib.contextmanager
def cursor(settings: Settings | None = None) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor in one transaction, committed on success, as the connecting (admin) user."""
    conn = connect(settings)
    try:
        with conn:
            with conn.cursor() as cur:
                yield cur
    finally:
        conn.close()


def validate_tenant_id(tenant_id: str) -> str:
    if not isinstance(tenant_id, str) or not _TENANT_ID.match(tenant_id):
        raise WarehouseError(
            f"invalid tenant id {tenant_id!r}: expected lowercase letters, digits, '_' or '-'"
        )
    return tenant_id


def reader_url(settings: Settings | None = None) -> str:
    """The warehouse URL logged in as report_reader itself.

    Report queries log in as the reporting role instead of switching to it with SET ROLE:
    a switched role can RESET ROLE (or set_config('role', ...)) back to the admin, a login
    role has nowhere to go.
    """
    params = psycopg2.extensions.parse_dsn(database_url(settings))
    params["user"] = READER_ROLE
    password = os.environ.get(READER_PASSWORD_ENV)
    if password:
        params["password"] = password
    else:
        params.pop("password", None)
    return psycopg2.extensions.make_dsn(**params)


def connect_reader(settings: Settings | None = None) -> psycopg2.extensions.connection:
    try:
        return psycopg2.connect(reader_url(settings), application_name="nexus-reports-reader")
    except psycopg2.OperationalError as exc:
        raise WarehouseError(
            f"cannot connect as {READER_ROLE}: {str(exc).strip()} "
            f"(with a password-protected server, set {READER_PASSWORD_ENV})"
        ) from exc


def reader_connection(settings: Settings | None = None) -> contextlib.closing:
    """A report_reader connection, closed when the with-block ends."""
    return contextlib.closing(connect_reader(settings))


@contextlib.contextmanager
def reader_transaction(
    conn: psycopg2.extensions.connection, tenant_id: str, *, scope: report_context.ReaderScope | None = None
) -> Iterator[psycopg2.extensions.cursor]:
    """A READ ONLY transaction of the reporting role, for one tenant.

    The tenant is a context row the admin writes for this reader backend (report_context); the
    transaction names it by its token with SET LOCAL, and the row is removed when the
    transaction ends, also on error. Nothing the report query sets (app.tenant_id,
    app.report_context) can select another tenant's context. Refuses a connection of any other
    role. A reused connection never carries one tenant into the next transaction.

    `scope` narrows the governed entity models further (verticals, regions, consent-withdrawn
    subjects included or not) and lives in the same context row; None: no vertical or region
    restriction, withdrawn subjects excluded (what every report query got before scopes).
    """
    validate_tenant_id(tenant_id)
    if scope is not None and not isinstance(scope, report_context.ReaderScope):
        raise WarehouseError(f"scope must be a ReaderScope, got {type(scope).__name__}")
    try:
        token = report_context.open_context(conn.get_backend_pid(), tenant_id, scope)
    except report_context.ContextError as exc:
        _raise_if_lost(conn)  # a terminated backend is a lost connection, not a wrong role
        raise WarehouseError(str(exc)) from exc
    try:
        with conn:
            with conn.cursor() as cur:
                # READ ONLY first: once a query has run, the transaction cannot be made writable.
                cur.execute("set transaction read only; select session_user, current_user, set_config(%s, %s, true)",
                            (report_context.CONTEXT_SETTING, token))
                if cur.fetchone()[:2] != (READER_ROLE, READER_ROLE):
                    raise WarehouseError(f"report queries must run on a {READER_ROLE} connection")
                yield cur
    finally:
        report_context.close_context(token)


def _raise_if_lost(conn: psycopg2.extensions.connection) -> None:
    """OperationalError/InterfaceError when the connection's backend is gone (the run engine
    retries those as source_unavailable); nothing otherwise."""
    try:
        with conn.cursor() as cur:
            cur.execute("select 1")
    finally:
        if not conn.closed:
            conn.rollback()


def ensure_database(settings: Settings | None = None) -> None:
    """Schemas, the reporting role and the control tables; safe to call on every start."""
    from orchestration.db import migrations

    if not os.environ.get(READER_PASSWORD_ENV) and _at_head(settings, migrations.head()):
        return  # done before (schemas, role and grants come before the migrations)
    with cursor(settings) as cur:
        cur.execute("select pg_advisory_xact_lock(hashtext('nexus-reports:ensure'))")
        for schema in SCHEMAS:
            cur.execute(f"create schema if not exists {schema}")
        cur.execute("select 1 from pg_roles where rolname = %s", (READER_ROLE,))
        if cur.fetchone() is None:
            with contextlib.suppress(psycopg2.errors.DuplicateObject):
                cur.execute(f"create role {READER_ROLE}")
        # The reader may read report models and nothing else: no raw data, no staging, no
        # control, nothing it owns, no way around row-level security.
        cur.execute(
            f"alter role {READER_ROLE} login nosuperuser nobypassrls nocreatedb nocreaterole noinherit noreplication"
        )
        password = os.environ.get(READER_PASSWORD_ENV)
        if password:
            cur.execute(f"alter role {READER_ROLE} password %s", (password,))
        cur.execute(f"grant usage on schema analytics to {READER_ROLE}")
        for schema in ("raw", "staging", "control", "snapshots"):
            cur.execute(f"revoke all on schema {schema} from {READER_ROLE}")
            cur.execute(f"revoke all on schema {schema} from public")
    migrations.upgrade(sqlalchemy_url(settings=settings))


def _at_head(settings: Settings | None, head: str) -> bool:
    """The control schema is at the newest revision and the reporting role exists."""
    with cursor(settings) as cur:
        cur.execute("select to_regclass('control.alembic_version') is not null")
        if not cur.fetchone()[0]:
            return False
        cur.execute("select (select version_num from control.alembic_version) = %s "
                    "and exists (select 1 from pg_roles where rolname = %s)", (head, READER_ROLE))
        return bool(cur.fetchone()[0])


def dict_rows(cur: psycopg2.extensions.cursor) -> list[dict[str, Any]]:
    cols = [d.name for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]


def json_param(value: Any) -> psycopg2.extras.Json:
    return psycopg2.extras.Json(value)


def usable(conn) -> bool:
    """Whether a connection still reaches the server (a terminated backend is only noticed on use)."""
    if conn.closed:
        return False
    try:
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute("select 1")
        conn.rollback()
        return True
    except psycopg2.Error:
        return False
