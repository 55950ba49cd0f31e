"""Typed records from database rows: the one way a frozen dataclass is built from a row.

A row is a dict by column name (db.warehouse.dict_rows). `from_row` takes the columns the record
has a field for and ignores the rest (a `select *` may carry more columns than the record
names, and a migration may add one); a field whose column is absent takes its default.
`values` overrides or adds fields the row does not hold as they are (a renamed column, a
conversion, something computed), and must name fields of the record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def from_row(cls: type[T], row: Mapping[str, Any], **values: Any) -> T:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    return cls(**{**{k: v for k, v in row.items() if k in names}, **values})
