"""A chart's numbers from its source's rows: categories along x, one series per y column (or per
value of the series columns), each point the total of the rows that share its category and series.

Pure: the rows were read under the requester's rules before they arrive here; nothing is
dropped or rounded, a category without a value in a series has None (not 0)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from orchestration.exports.sections import Column


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[float | int | None, ...]


@dataclass(frozen=True)
class ChartData:
    x_axis: str
    categories: tuple[object, ...]
    series: tuple[Series, ...]

    def columns(self, x_type: str) -> list[Column]:
        """The data as a section's columns for exports.charts: x, then one per series (its name as label)."""
        return [Column("x", x_type), *(Column(f"s{i}", "numeric", s.name) for i, s in enumerate(self.series))]

    def rows(self) -> list[tuple]:
        return [(c, *(s.values[i] for s in self.series)) for i, c in enumerate(self.categories)]


def _number(value) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _add(a, b):
    return b if a is None else a if b is None else a + b


def pivot(names: Sequence[str], rows: list[tuple], *, x: str, y: Sequence[str], split: Sequence[str] = (),
          labels: dict[str, str] | None = None) -> ChartData:
    """`names` are the rows' column names; x, y and split name columns among them. Categories keep
    the source's order (its sort); series appear in the order their first value does."""
    index = {n: i for i, n in enumerate(names)}
    labels = labels or {}
    categories: dict[object, int] = {}
    totals: dict[str, dict[int, float | int | None]] = {}
    for row in rows:
        category = categories.setdefault(row[index[x]], len(categories))
        key = " / ".join("\u2014" if row[index[c]] is None else str(row[index[c]]) for c in split)
        for column in y:
            name = (f"{key} \u00b7 {labels.get(column, column)}" if len(y) > 1 else key) if split \
                else labels.get(column, column)
            points = totals.setdefault(name, {})
            points[category] = _add(points.get(category), _number(row[index[column]]))
    series = tuple(Series(name, tuple(points.get(i) for i in range(len(categories)))) for name, points in totals.items())
    if not series:  # no rows: the y columns, empty, so the chart still names what it draws
        series = tuple(Series(labels.get(c, c), ()) for c in y)
    return ChartData(x, tuple(categories), series)
