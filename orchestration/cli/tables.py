"""The one table renderer of the command line: a header row, aligned columns, one time format.

Every list command builds `Column`s and rows of plain values and calls `render`; cells are
formatted here, so a timestamp reads the same everywhere: `YYYY-MM-DD HH:MM:SSZ` in UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

TIME_FORMAT = "%Y-%m-%d %H:%M:%SZ"


def when(value: dt.datetime | None) -> str:
    """A timestamp as `YYYY-MM-DD HH:MM:SSZ` in UTC (naive values are taken as UTC); '-' for none."""
    if value is None:
        return "-"
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime(TIME_FORMAT)


def cell(value: Any) -> str:
    """How a value reads in a table: times in the one format, none as '-'."""
    if value is None or value == "":
        return "-"
    if isinstance(value, dt.datetime):
        return when(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(sorted(str(v) for v in value)) or "-"
    return str(value)


@dataclass(frozen=True)
class Column:
    header: str
    right: bool = False  # numbers align right


def render(columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> list[str]:
    """The table as lines: header first, each column as wide as its widest cell, two spaces
    between columns, the last column unpadded (it may hold free text)."""
    texts = [[cell(v) for v in row] for row in rows]
    for row in texts:
        if len(row) != len(columns):
            raise ValueError(f"row has {len(row)} cells for {len(columns)} columns")
    widths = [max([len(c.header), *(len(row[i]) for row in texts)]) for i, c in enumerate(columns)]
    lines = []
    for row in [[c.header for c in columns], *texts]:
        parts = []
        for i, (column, text) in enumerate(zip(columns, row, strict=True)):
            last = i == len(columns) - 1
            parts.append(text.rjust(widths[i]) if column.right else (text if last else text.ljust(widths[i])))
        lines.append("  ".join(parts).rstrip())
    return lines


def echo_table(columns: Sequence[Column], rows: Iterable[Sequence[Any]], echo: Callable[[str], None],
               empty: str | None = None) -> None:
    rows = list(rows)
    if not rows and empty is not None:
        echo(empty)
        return
    for line in render(columns, rows):
        echo(line)
