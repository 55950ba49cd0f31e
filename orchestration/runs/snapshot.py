"""Snapshots: each section of a run, queried under RLS and frozen in its own table.

The query runs as `report_reader` with the run's tenant set; its rows are copied into
`snapshots."r_<run>__<section>"`, which then refuses updates and deletes. Every format and
Gate B read the snapshot, never live data, so all four files show the same numbers.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable

import psycopg2

from orchestration.catalog import section_sql, sql_guard
from orchestration.catalog.templates import SectionDef, Template, TemplateError
from orchestration.db.warehouse import reader_transaction
from orchestration.dev import faults
from orchestration.exports import SectionSnapshot
from orchestration.metrics import dbt_manifest
from orchestration.runs.request import ReportRequest

ORDINAL = "_ordinal"  # row position in the section's own ORDER BY; formats sort by it
_SPOOL_BYTES = 16 * 1024 * 1024


class SnapshotError(RuntimeError):
    """A section query failed or broke its declared contract."""


def table_name(run_id: str, section: str) -> str:
    return f'snapshots."r_{run_id}__{section}"'


def _create_table(cur, table: str, section: SectionDef) -> None:
    columns = ",\n".join(f'"{c.name}" {c.type}' for c in section.columns)
    cur.execute(
        f"""
        create table {table} (
            {ORDINAL} bigint generated always as identity,
            {columns}
        )
        """
    )


def _freeze(cur, table: str) -> None:
    """From now on the table refuses every change, its own loader's included."""
    cur.execute(
        f"""
        create trigger immutable_snapshot before insert or update or delete on {table}
            for each row execute function snapshots.refuse_change();
        create trigger immutable_snapshot_truncate before truncate on {table}
            for each statement execute function snapshots.refuse_change();
        """
    )


def _checked(template: Template, section: SectionDef, resolve) -> section_sql.RenderedSection:
    """The section's SQL, rendered and passed by the SQL guard, or SnapshotError (fail closed:
    an approved template runs only what the guard accepts today)."""
    try:
        rendered = section_sql.render(section, resolve)
        sql_guard.check(rendered.sql, section=section.name, relations=rendered.relations,
                        parameters=section_sql.parameter_names(template))
    except (TemplateError, sql_guard.SqlRefused) as exc:
        raise SnapshotError(f"{template.label}: {exc}") from exc
    return rendered


def _copy_out(reader, request: ReportRequest, sql: str, params, timeout_seconds: float | None, spool) -> None:
    """The section's rows as CSV with a header, queried in one report transaction of the tenant
    (and, for a definition's run, its row scope)."""
    with reader_transaction(reader, request.tenant_id, scope=request.reader_scope()) as cur:
        if timeout_seconds:
            cur.execute("select set_config('statement_timeout', %s, true)",
                        (f"{max(int(timeout_seconds * 1000), 1)}ms",))
        # Bound by us and run without a parameter dict: a literal % is plain SQL.
        bound = section_sql.bind(sql, params, cur)
        # The newline keeps a trailing -- comment from swallowing the closing parenthesis.
        cur.copy_expert(f"copy ({bound}\n) to stdout with (format csv, header true)", spool)


def take(
    conn,
    reader,
    run_id: str,
    template: Template,
    request: ReportRequest,
    *,
    resolve_relation: Callable[[str, int | None], str] | None = None,
    timeout_seconds: float | None = None,
) -> dict[str, SectionSnapshot]:
    """Query every section for the request's tenant and window into immutable snapshot tables.

    `reader` is a report_reader connection (queries); `conn` the admin connection (writes).
    """
    resolve = resolve_relation or (lambda name, version=None: dbt_manifest.model(name, version).relation)
    params = request.query_params(template)
    snapshots: dict[str, SectionSnapshot] = {}
    for index, section in enumerate(template.sections):
        if index == 1:  # fault tests cut the connection with one section already frozen
            faults.hit("snapshot_query", backend_pid=reader.get_backend_pid(), admin_pid=conn.get_backend_pid())
        rendered = _checked(template, section, resolve)
        table = table_name(run_id, section.name)
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+b") as spool:
            try:
                _copy_out(reader, request, rendered.sql, params, timeout_seconds, spool)
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                raise  # connection lost, timeout or cancel: classified by the run engine, not a SQL error
            except psycopg2.Error as exc:
                raise SnapshotError(
                    f"section {section.name!r} of {template.label}: query failed: {str(exc).strip()}"
                ) from exc
            spool.seek(0)
            header = next(csv.reader([spool.readline().decode("utf-8")]), [])
            declared = [c.name for c in section.columns]
            if header != declared:
                raise SnapshotError(
                    f"section {section.name!r} of {template.label}: query returns columns {header}, "
                    f"the template declares {declared}"
                )
            spool.seek(0)
            with conn, conn.cursor() as cur:
                _create_table(cur, table, section)
                column_list = ", ".join(f'"{c}"' for c in declared)
                cur.copy_expert(
                    f"copy {table} ({column_list}) from stdin with (format csv, header true)", spool
                )
                rows = cur.rowcount
                _freeze(cur, table)
        snapshots[section.name] = SectionSnapshot(
            name=section.name,
            title=section.title,
            table=table,
            columns=tuple(c.as_column() for c in section.columns),
            order_by=(ORDINAL,),
            row_count=rows,
        )
    return snapshots


def tables_of(conn, run_id: str) -> dict[str, str]:
    """The snapshot tables a run created so far, by section (also those of an unfinished run)."""
    prefix = f"r_{run_id}__"
    with conn, conn.cursor() as cur:
        cur.execute("select tablename from pg_tables where schemaname = 'snapshots' and starts_with(tablename, %s)",
                    (prefix,))
        names = [r[0] for r in cur.fetchall()]
    return {name[len(prefix):]: f'snapshots."{name}"' for name in sorted(names)}


def drop(conn, run_id: str, sections: list[str]) -> None:
    """Remove a run's snapshot tables (used only when abandoning a run that never published)."""
    with conn, conn.cursor() as cur:
        for section in sections:
            cur.execute(f"drop table if exists {table_name(run_id, section)}")


def read_section(reader, template: Template, section: SectionDef, request: ReportRequest, *, limit: int,
                 resolve_relation: Callable[[str, int | None], str] | None = None) -> list[tuple]:
    """Up to `limit` rows of one section, read exactly as `take` reads them (the section's SQL
    passed by the guard, one report transaction of the request's tenant and row scope), but not
    frozen: for a chart rendered from a template, which keeps no snapshot."""
    resolve = resolve_relation or (lambda name, version=None: dbt_manifest.model(name, version).relation)
    rendered = _checked(template, section, resolve)
    with reader_transaction(reader, request.tenant_id, scope=request.reader_scope()) as cur:
        cur.execute(section_sql.bind(rendered.sql, request.query_params(template), cur))
        return cur.fetchmany(limit)
