"""The SQL guard: a section's SQL must be one plain SELECT over the dbt models it declares.

Defence in depth. Tenant isolation holds in the database whatever a query contains (a report
context the query cannot forge, db/report_context.py); this guard refuses, before anything
runs, the SQL that tries: changing or reading settings, system catalogs, other schemas,
statements besides one SELECT, writes, locks, sleeps, large objects, dblink. Gate A runs it at
submit and approve, the run engine before every snapshot query, and it fails closed: what it
cannot parse, or does not know, is refused.

Refusals name the construct and the section; they quote only the template's own SQL, never data.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.tokens import TokenType

from orchestration.catalog import section_sql
from orchestration.errors import Invalid

# The functions a report may call, written as SQL; mapped below onto sqlglot's node names, so
# the list reads as SQL and follows sqlglot's naming across versions.
_ALLOWED_SQL = """
select count(*), count(distinct x), sum(x), avg(x), min(x), max(x), bool_and(x), bool_or(x), every(x),
  stddev(x), stddev_pop(x), stddev_samp(x), variance(x), var_pop(x), var_samp(x), corr(x, y),
  percentile_cont(0.5) within group (order by x), percentile_disc(0.5) within group (order by x),
  mode() within group (order by x), string_agg(x, ','), array_agg(x),
  row_number() over (), rank() over (), dense_rank() over (), percent_rank() over (), cume_dist() over (),
  ntile(4) over (), lag(x) over (), lead(x) over (), first_value(x) over (), last_value(x) over (),
  nth_value(x, 2) over (),
  coalesce(x, y), nullif(x, y), greatest(x, y), least(x, y), case when x then y else z end, cast(x as int),
  abs(x), ceil(x), ceiling(x), floor(x), round(x, 1), trunc(x), sign(x), sqrt(x), cbrt(x), power(x, 2), exp(x),
  ln(x), log(x), log10(x), mod(x, y), div(x, y), width_bucket(x, 0, 1, 10),
  length(x), char_length(x), lower(x), upper(x), initcap(x), trim(x), ltrim(x), rtrim(x), btrim(x),
  substring(x, 1, 2), substr(x, 1, 2), left(x, 2), right(x, 2), lpad(x, 2), rpad(x, 2), replace(x, 'a', 'b'),
  concat(x, y), concat_ws(',', x, y), split_part(x, ',', 1), position('a' in x), strpos(x, 'a'), reverse(x),
  repeat(x, 2), md5(x), sha256(x), encode(x, 'hex'), convert_to(x, 'UTF8'),
  format(x, y), to_char(x, 'YYYY'), to_number(x, '999'), to_date(x, 'YYYY'),
  to_timestamp(x, 'YYYY'), date_trunc('month', x), date_part('year', x), extract(year from x), age(x, y),
  make_date(2020, 1, 1), make_interval(days => 1), make_timestamp(2020, 1, 1, 0, 0, 0), justify_interval(x),
  now(), current_date, current_timestamp, generate_series(1, 2), unnest(x), array_length(x, 1),
  cardinality(x), array_position(x, y), regexp_replace(x, 'a', 'b'), regexp_match(x, 'a'),
  x in (1, 2), exists (select 1), x between 1 and 2, x like 'a', x ilike 'a', x is distinct from y,
  (x and y) or not z, array[1, 2], x = any(array[1]), x = all(array[1])
"""

# Casts to anything else (regclass, regproc, oid, pg_* types) could reach catalog objects by name.
_ALLOWED_TYPES = {
    exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR, exp.DataType.Type.CHAR, exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.DECIMAL, exp.DataType.Type.DOUBLE,
    exp.DataType.Type.FLOAT, exp.DataType.Type.BOOLEAN, exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.INTERVAL, exp.DataType.Type.TIME,
}

# Nodes that are never part of a report query: writes, DDL, session and transaction control,
# locking clauses, SELECT INTO, unparsed commands (DO, CALL...), positional parameters.
_FORBIDDEN = {
    exp.Insert: "INSERT", exp.Update: "UPDATE", exp.Delete: "DELETE", exp.Merge: "MERGE", exp.Create: "CREATE",
    exp.Drop: "DROP", exp.Alter: "ALTER", exp.Copy: "COPY", exp.Command: "a command the guard cannot parse",
    exp.Set: "SET", exp.Transaction: "a transaction statement", exp.Commit: "COMMIT", exp.Rollback: "ROLLBACK",
    exp.Lock: "a locking clause (FOR UPDATE/SHARE)", exp.Into: "SELECT INTO", exp.Placeholder: "a placeholder",
    exp.Parameter: "a positional parameter", exp.TruncateTable: "TRUNCATE",
}

# Lexical forms PostgreSQL and sqlglot might read differently; none is needed in a report.
_FORBIDDEN_TOKENS = {
    TokenType.SEMICOLON: "';' (a section is exactly one statement)",
    TokenType.HEREDOC_STRING: "a dollar-quoted string",
    TokenType.BYTE_STRING: "an E'' escape string",
    TokenType.UNICODE_STRING: "a U&'' string",
}

_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
_DATA_SCHEMAS = ("raw", "staging", "control", "snapshots", "rls", "public")


class SqlRefused(Invalid):
    """Section SQL the guard will not run, with the construct that made it so."""

    def __init__(self, section: str, problem: str):
        self.section, self.problem = section, problem
        super().__init__(f"section {section}: {problem}")


def _key(node: exp.Func) -> str:
    # Kept apart: a function sqlglot does not know must not pass as one it does.
    return f"name:{node.name.lower()}" if isinstance(node, exp.Anonymous) else f"node:{node.key}"


def _display(node: exp.Func) -> str:
    return node.name.lower() if isinstance(node, exp.Anonymous) else node.sql_name().lower()


@lru_cache(maxsize=1)
def allowed_functions() -> frozenset[str]:
    return frozenset(_key(f) for f in sqlglot.parse_one(_ALLOWED_SQL, read="postgres").find_all(exp.Func))


def _ident(name: str, node: exp.Expression | None) -> str:
    # PostgreSQL folds unquoted identifiers to lower case.
    quoted = isinstance(node, exp.Identifier) and node.quoted
    return name if quoted else name.lower()


def _relation_key(table: exp.Table) -> tuple[str, str]:
    return (_ident(table.db, table.args.get("db")), _ident(table.name, table.this))


@lru_cache(maxsize=256)
def _declared_key(relation: str) -> tuple[str, str]:
    return _relation_key(exp.to_table(relation, dialect="postgres"))


def check(sql: str, *, section: str, relations: Iterable[str], parameters: Iterable[str] = ()) -> None:
    """Refuse (SqlRefused) unless `sql` is one SELECT reading only `relations` and its own CTEs,
    with no %(name)s parameter besides `parameters`."""
    known = set(parameters)
    for match in section_sql.PLACEHOLDER.finditer(sql):
        if match[1] is not None and match[1] not in known:
            raise SqlRefused(section, f"the parameter %({match[1]})s is neither the run's window nor a declared filter")
    text = section_sql.neutral(sql)
    try:
        for token in sqlglot.tokenize(text, read="postgres"):
            if token.token_type in _FORBIDDEN_TOKENS:
                raise SqlRefused(section, f"{_FORBIDDEN_TOKENS[token.token_type]} at line {token.line} is not allowed")
        statements = [s for s in sqlglot.parse(text, read="postgres") if s is not None]
    except SqlglotError as exc:
        raise SqlRefused(section, f"the SQL does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise SqlRefused(section, f"the SQL holds {len(statements)} statements; a section is exactly one SELECT")
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.SetOperation):
        kind = str(tree.this).split()[0].upper() if isinstance(tree, exp.Command) else tree.key.upper()
        raise SqlRefused(section, f"the statement is {kind}; a section is exactly one SELECT")
    _check_nodes(tree, section)
    _check_relations(tree, section, {_declared_key(r) for r in relations})


def _check_nodes(tree: exp.Expression, section: str) -> None:
    allowed = allowed_functions()
    for node in tree.walk():
        for kind, label in _FORBIDDEN.items():
            if isinstance(node, kind):
                raise SqlRefused(section, f"{label} is not allowed in a report query")
        if isinstance(node, exp.Func):
            if isinstance(node.parent, exp.Dot):
                qualifier = node.parent.this.sql("postgres")[:40]
                raise SqlRefused(section, f"the schema-qualified function call {qualifier}.{_display(node)}() "
                                          "is not allowed")
            if _key(node) not in allowed:
                raise SqlRefused(section, f"the function {_display(node)}() is not allowed in a report query "
                                          "(allowed: aggregates, window, math, string, date functions, coalesce, case)")
        if isinstance(node, exp.Cast) and node.to.this not in _ALLOWED_TYPES:
            raise SqlRefused(section, f"a cast to {node.to.sql('postgres')} is not allowed")


def _check_relations(tree: exp.Expression, section: str, declared: set[tuple[str, str]]) -> None:
    for scope in traverse_scope(tree):
        for table in scope.tables:
            if not isinstance(table.this, exp.Identifier):
                continue  # a function in FROM (generate_series, unnest): checked as a function
            schema, name = _relation_key(table)
            if table.args.get("catalog"):
                raise SqlRefused(section, f"the relation {table.sql('postgres')} names a database; "
                                          "read the template's dbt models with ref()")
            if not schema and name in scope.cte_sources:
                continue
            if (schema, name) in declared:
                continue
            raise SqlRefused(section, _relation_problem(schema, name))


def _relation_problem(schema: str, name: str) -> str:
    full = f"{schema}.{name}" if schema else name
    if schema in _SYSTEM_SCHEMAS or (not schema and name.startswith("pg_")):
        return f"reads the system catalog {full}: only the template's dbt models may be read"
    if schema in _DATA_SCHEMAS:
        return f"reads {full} in schema {schema}: only the template's dbt models (ref()) may be read"
    if not schema:
        return (f"reads {full}, which is neither a CTE of the query nor a dbt model it declares "
                "(an unqualified name resolves to the system catalogs): use ref()")
    return f"reads {full}, which is not a dbt model the template declares with ref()"
