"""A report definition as data: entities, qualified fields, filters, grouping, aggregates, sort.

Never SQL. Field references are `entity_name.field_name`, each part a registry identifier;
values are JSON scalars (or lists of them) that the builder binds as parameters. The shape is
checked here; whether the names exist, may be used this way and may be seen by the requester is
the builder's question, asked against the registry at every compile.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestration.governance.versioned import LifecycleStamps, Status, Version, VersionedObject

QUALIFIED = r"^[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$"
ALIAS = r"^[a-z][a-z0-9_]{0,62}$"
Scalar = str | int | float | bool | dt.date
FilterOp = Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "is_null", "not_null", "contains"]
AggregateFunction = Literal["count", "count_distinct", "sum", "avg", "min", "max"]
MeasurementType = Literal["baseline", "follow_up", "outcome"]
MAX_LIST = 1000


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filter(_Spec):
    field: str = Field(pattern=QUALIFIED)
    op: FilterOp
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Filter:
        if self.op in ("is_null", "not_null"):
            if self.value is not None:
                raise ValueError(f"{self.op} takes no value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not 1 <= len(self.value) <= MAX_LIST:
                raise ValueError(f"{self.op} takes a list of 1 to {MAX_LIST} values")
        elif self.op == "between":
            if not isinstance(self.value, list) or len(self.value) != 2:
                raise ValueError("between takes a list of exactly two values [low, high]")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"{self.op} takes one value")
        if self.op == "contains" and not isinstance(self.value, str):
            raise ValueError("contains takes a text value")
        if isinstance(self.value, str) and "\x00" in self.value or (
            isinstance(self.value, list) and any(isinstance(v, str) and "\x00" in v for v in self.value)
        ):
            raise ValueError("values cannot contain NUL characters")
        return self


class Aggregate(_Spec):
    function: AggregateFunction
    field: str = Field(pattern=QUALIFIED)
    alias: str = Field(pattern=ALIAS)


class Sort(_Spec):
    field: str = Field(description="a selected qualified field or an aggregate alias")
    direction: Literal["asc", "desc"] = "asc"


class TimeWindow(_Spec):
    """The field a run's time window applies to; the window itself comes with each run or preview."""

    field: str = Field(pattern=QUALIFIED)


class DefinitionSpec(_Spec):
    report_name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    entity_ids: tuple[str, ...] = Field(min_length=1, max_length=8)
    fields: tuple[str, ...] = Field(default=(), max_length=200)
    filters: tuple[Filter, ...] = Field(default=(), max_length=100)
    group_by: tuple[str, ...] = Field(default=(), max_length=50)
    aggregates: tuple[Aggregate, ...] = Field(default=(), max_length=50)
    sort: tuple[Sort, ...] = Field(default=(), max_length=20)
    time_window: TimeWindow | None = None
    vertical_scope: tuple[str, ...] = ()
    geo_scope: tuple[str, ...] = ()
    measurement_type: tuple[MeasurementType, ...] = ()

    @model_validator(mode="after")
    def _shape(self) -> DefinitionSpec:
        for name in (*self.fields, *self.group_by):
            if not _is_qualified(name):
                raise ValueError(f"{name!r} is not a qualified field name (entity.field)")
        if not self.fields and not self.aggregates:
            raise ValueError("select at least one field or one aggregate")
        if self.aggregates:
            loose = [f for f in self.fields if f not in self.group_by]
            if loose:
                raise ValueError(f"with aggregates, every selected field must be in group_by: {', '.join(loose)}")
        aliases = [a.alias for a in self.aggregates]
        if len(set(aliases)) != len(aliases):
            raise ValueError("aggregate aliases must be unique")
        if len(set(self.fields)) != len(self.fields):
            raise ValueError("a field is selected twice")
        return self


def _is_qualified(name: str) -> bool:
    import re

    return re.fullmatch(QUALIFIED, name) is not None


DefinitionStatus = Status


class SecurityContext(_Spec):
    """The context a definition was saved under; every later run is validated against it."""

    tenant_id: str
    verticals: tuple[str, ...] = ()
    geo_scopes: tuple[str, ...] = ()


class DefinitionVersion(Version):
    definition_id: str
    spec: DefinitionSpec
    validation_hash: str
    security_context: SecurityContext


class Definition(LifecycleStamps, VersionedObject):
    """A saved report: its lifecycle, its newest version and the version runs use."""

    id_field: ClassVar[str] = "definition_id"
    definition_id: str
    status: DefinitionStatus
    # Set by a registry or policy change that leaves the version runs use unable to run for its
    # owner (services.definition_validity): which fields and why. Runs and schedules refuse it.
    invalid_since: dt.datetime | None = None
    invalid_reason: str | None = None
    invalid_fields: tuple[str, ...] = ()

    @property
    def invalid(self) -> bool:
        return self.invalid_since is not None


class DefinitionCreate(DefinitionSpec):
    tenant_id: str | None = Field(default=None, description="needed only when the caller belongs to several tenants")


class DefinitionUpdate(_Spec):
    report_name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    fields: tuple[str, ...] | None = None
    filters: tuple[Filter, ...] | None = None
    group_by: tuple[str, ...] | None = None
    aggregates: tuple[Aggregate, ...] | None = None
    sort: tuple[Sort, ...] | None = None


class RunParameters(_Spec):
    """A window of days (first and last inclusive) for a preview or a run."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None

    @model_validator(mode="after")
    def _window(self) -> RunParameters:
        if (self.date_from is None) != (self.date_to is None):
            raise ValueError("give both date_from and date_to (first and last day), or neither")
        if self.date_from and self.date_to:
            if self.date_to < self.date_from:
                raise ValueError("date_to is before date_from")
            if (self.date_to - self.date_from).days >= 366:
                raise ValueError("a window is at most 366 days")
        return self

    def half_open(self) -> tuple[dt.date, dt.date] | None:
        """[first day, day after the last), or None when no window was given."""
        if self.date_from and self.date_to:
            return self.date_from, self.date_to + dt.timedelta(days=1)
        return None
