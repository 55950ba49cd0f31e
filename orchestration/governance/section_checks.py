"""Gate A's section check: each section passes the SQL guard, compiles as report_reader and
returns its declared columns.

The guard runs first and nothing it refuses is executed. What is executed runs in a READ ONLY
report transaction whose context is a tenant that owns no rows, wrapped in `LIMIT 0`. A refusal
never carries what the database said: an error message can hold values (a cast of a value, a
RAISE in a block), and the submitter may not read any data. It names the section, the error
condition and the line, which is what the author needs to fix it.
"""

from __future__ import annotations

import psycopg2
import psycopg2.errorcodes

from orchestration.catalog import section_sql, sql_guard
from orchestration.catalog.templates import SectionDef, Template, TemplateError
from orchestration.db.warehouse import reader_connection, reader_transaction
from orchestration.metrics import dbt_manifest

GATE_A_TENANT = "gate-a-check"  # RLS context for compile checks: matches no rows
_WRAP_PREFIX = "select * from ("
_PARAMS = {"window_start": "2000-01-01", "window_end": "2000-02-01"}


def problems(template: Template, manifest) -> list[str]:
    found: list[str] = []

    def resolve(name, version=None):
        return dbt_manifest.model(name, version, manifest).relation

    with reader_connection() as reader:
        for section in template.sections:
            found += _section(reader, template, section, resolve)
    return found


def _section(reader, template: Template, section: SectionDef, resolve) -> list[str]:
    try:
        rendered = section_sql.render(section, resolve)
    except dbt_manifest.DbtError as exc:
        return [f"section {section.name}: {exc}"]
    except TemplateError as exc:
        return [str(exc)]
    try:
        sql_guard.check(rendered.sql, section=section.name, relations=rendered.relations,
                        parameters=section_sql.parameter_names(template))
    except sql_guard.SqlRefused as exc:
        return [f"{exc} (refused by the SQL guard, not run)"]
    params = _PARAMS | {f.name: None for f in template.filters}
    bound = None
    try:
        with reader_transaction(reader, GATE_A_TENANT) as cur:
            bound = section_sql.bind(rendered.sql, params, cur)
            # The newline keeps a trailing -- comment from swallowing the closing parenthesis.
            cur.execute(f"{_WRAP_PREFIX}{bound}\n) as gate_a limit 0")
            returned = [d.name for d in cur.description]
    except psycopg2.Error as exc:
        return [f"section {section.name}: query does not compile as report_reader: "
                f"{describe_error(exc, bound_sql=bound)}"]
    declared = [c.name for c in section.columns]
    missing = [c for c in declared if c not in returned]
    if missing:
        return [f"section {section.name}: declared columns missing from the query: {', '.join(missing)}"]
    if returned != declared:
        return [f"section {section.name}: query returns {returned}, the template declares {declared}"]
    return []


def describe_error(exc: psycopg2.Error, *, bound_sql: str | None) -> str:
    """The error's condition, SQLSTATE and line in the section: never its message text."""
    code = exc.pgcode or ""
    condition = (psycopg2.errorcodes.lookup(code) if code else None) or type(exc).__name__
    where = ""
    position = getattr(exc.diag, "statement_position", None) if getattr(exc, "diag", None) else None
    if position and bound_sql is not None:
        offset = int(position) - 1 - len(_WRAP_PREFIX)
        if 0 <= offset <= len(bound_sql):
            where = f" near line {bound_sql.count(chr(10), 0, offset) + 1} of the section's SQL"
    label = condition.lower().replace("_", " ")
    return f"{label} (SQLSTATE {code or 'none'}){where}; the database's message is withheld from Gate A reports"
