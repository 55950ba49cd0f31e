"""The PostgreSQL warehouse: which server, how to connect, and the reporting role.

Every process that touches the embedded server holds a pgserver handle for its lifetime, so the
server stays up while Dagster or a command uses it and stops after the last one exits.
Report queries never run as the connecting user: `reader_transaction` switches to
`report_reader` (no ownership, no BYPASSRLS) and sets the tenant with `SET LOCAL`.
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

from orchestration.settings import EMBEDDED_DATABASE, Settings, get_settings

READER_ROLE = "report_reader"
SCHEMAS = ("raw", "staging", "analytics", "control", "snapshots")
TENANT_SETTING = "app.tenant_id"
READER_PASSWORD_ENV = "REPORTS_READER_PASSWORD"
_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

_server: Any = None  # the pgserver handle this process holds


class WarehouseError(RuntimeError):
    """A problem a user can act on (bad URL, server unreachable, no tenant)."""


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
    admin_dsn = server.get_uri()
    _create_database_if_missing(admin_dsn, EMBEDDED_DATABASE)
    return server.get_uri(EMBEDDED_DATABASE)


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


def dagster_storage_url(settings: Settings | None = None) -> str:
    """Dagster's own storage: a database beside the warehouse on the same server."""
    p = connection_params(settings)
    name = f"{p['dbname']}_dagster"
    _create_database_if_missing(database_url(settings), name)
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


def _create_database_if_missing(dsn: str, name: str) -> None:
    conn = psycopg2.connect(dsn)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (name,))
            if cur.fetchone() is None:
                try:
                    cur.execute(f'create database "{name}"')
                except psycopg2.errors.DuplicateDatabase:
                    pass  # another process created it first
    finally:
        conn.close()


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
    conn: psycopg2.extensions.connection, tenant_id: str
) -> Iterator[psycopg2.extensions.cursor]:
    """A transaction of the reporting role with the tenant set by SET LOCAL.

    The tenant lives exactly as long as the transaction, so a reused connection never
    carries one tenant into the next query. Refuses a connection of any other role.
    """
    validate_tenant_id(tenant_id)
    with conn:
        with conn.cursor() as cur:
            cur.execute("select session_user, current_user")
            if cur.fetchone() != (READER_ROLE, READER_ROLE):
                raise WarehouseError(f"report queries must run on a {READER_ROLE} connection")
            cur.execute("select set_config(%s, %s, true)", (TENANT_SETTING, tenant_id))
            yield cur


def ensure_database(settings: Settings | None = None) -> None:
    """Schemas, the reporting role and the control tables; safe to call on every start."""
    from orchestration.db import migrations

    with cursor(settings) as cur:
        cur.execute("select pg_advisory_xact_lock(hashtext('nexus-reports:ensure'))")
        for schema in SCHEMAS:
            cur.execute(f"create schema if not exists {schema}")
        cur.execute("select 1 from pg_roles where rolname = %s", (READER_ROLE,))
        if cur.fetchone() is None:
            try:
                cur.execute(f"create role {READER_ROLE}")
            except psycopg2.errors.DuplicateObject:
                pass
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


def dict_rows(cur: psycopg2.extensions.cursor) -> list[dict[str, Any]]:
    cols = [d.name for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


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
