"""CSV: one COPY straight from the snapshot to the file, formula injection neutralized in SQL."""

from __future__ import annotations

from pathlib import Path

from orchestration.exports.sections import SectionSnapshot

# OWASP CSV injection: a cell starting with one of these is a formula to spreadsheet apps.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
_TRIGGER_SQL = r"E'^[=+@\t\r\n-]'"  # the same characters, as a PostgreSQL regex


def neutralize_formula(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def _column_sql(name: str, type_: str) -> str:
    quoted = f'"{name}"'
    if type_ == "boolean":
        # COPY writes t/f; spreadsheets and the JSON variant say true/false.
        return f"case when {quoted} then 'true' when not {quoted} then 'false' end as {quoted}"
    if type_ != "text":
        return quoted  # numbers stay numbers: a negative count is data, not a formula
    return f"case when {quoted} ~ {_TRIGGER_SQL} then '''' || {quoted} else {quoted} end as {quoted}"


STATUS_COLUMN = "report_status"


def write_csv(conn, section: SectionSnapshot, path: Path, *, status_note: str | None = None) -> int:
    """`status_note` (a degraded run) adds a last column saying so on every row: whoever loads
    the file sees it, and a header check fails loudly rather than silently."""
    columns = [_column_sql(c.name, c.type) for c in section.columns]
    if status_note:
        columns.append("%s as " + STATUS_COLUMN)
    select = section.select_sql(columns)
    if status_note:
        with conn.cursor() as cur:
            select = cur.mogrify(select, (status_note,)).decode()
    with conn.cursor() as cur, path.open("wb") as fh:
        cur.copy_expert(f"copy ({select}) to stdout with (format csv, header true, encoding 'UTF8')", fh)
        return cur.rowcount
