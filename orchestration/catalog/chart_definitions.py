"""A chart definition as data: its source (a saved report definition or an approved query
template), the chart type, the columns on its axes, and filters.

Never SQL. Axis and series names are the source's output columns (a definition's field name or
its qualified `entity.field`, or an aggregate alias; a template section's column); whether they
exist, and whether the requester may see them, is asked of the source at every save and render.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestration.catalog.definitions import Filter
from orchestration.governance.versioned import LifecycleStamps, Status, Version, VersionedObject

ChartType = Literal["bar", "stacked_bar", "line", "area", "pie"]
SourceKind = Literal["definition", "template"]
# a source column: an alias, a qualified entity.field, or a template's section.column
COLUMN = r"^[a-z][a-z0-9_]{0,62}(\.[a-z][a-z0-9_]{0,62})?$"
TEMPLATE_ID = r"^[a-z][a-z0-9_]{0,62}(@[1-9][0-9]{0,5})?$"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChartSpec(_Spec):
    chart_name: str = Field(min_length=1, max_length=200)
    source_report_definition_id: str | None = Field(default=None, pattern=r"^rdef_[0-9a-f]{16}$")
    source_template_id: str | None = Field(default=None, pattern=TEMPLATE_ID,
                                           description="a template key, or key@version (default: its runnable version)")
    chart_type: ChartType
    x_axis: str = Field(pattern=COLUMN, description="the column whose values are the categories (pie: the slices)")
    y_axis: tuple[str, ...] = Field(min_length=1, max_length=8, description="the numeric column(s) drawn")
    series: str | None = Field(default=None, pattern=COLUMN,
                               description="a column whose values split each y column into one series per value")
    filters: tuple[Filter, ...] = Field(default=(), max_length=20,
                                        description="definition sources: added to the definition's own filters")
    group_by: tuple[str, ...] = Field(default=(), max_length=4,
                                      description="further columns whose values name the series (with `series`)")

    @model_validator(mode="after")
    def _shape(self) -> ChartSpec:
        if (self.source_report_definition_id is None) == (self.source_template_id is None):
            raise ValueError("give exactly one of source_report_definition_id and source_template_id")
        for name in (*self.y_axis, *self.group_by):
            if not re.fullmatch(COLUMN, name):
                raise ValueError(f"{name!r} is not a column name")
        if self.chart_type == "pie" and (len(self.y_axis) != 1 or self.series or self.group_by):
            raise ValueError("a pie chart has one y_axis column and no series or group_by")
        if self.filters and self.source_template_id:
            raise ValueError("filters apply to definition sources; a template's own parameters filter it")
        used = [self.x_axis, *self.y_axis, *([self.series] if self.series else []), *self.group_by]
        if len(set(used)) != len(used):
            raise ValueError("a column is used twice among x_axis, y_axis, series and group_by")
        return self

    @property
    def source_kind(self) -> SourceKind:
        return "definition" if self.source_report_definition_id else "template"

    @property
    def source_id(self) -> str:
        return self.source_report_definition_id or str(self.source_template_id)

    def columns(self) -> tuple[str, ...]:
        return (self.x_axis, *self.y_axis, *([self.series] if self.series else []), *self.group_by)


class ChartCreate(ChartSpec):
    tenant_id: str | None = Field(default=None, description="needed only when the caller belongs to several tenants")


class ChartUpdate(_Spec):
    chart_name: str | None = Field(default=None, min_length=1, max_length=200)
    chart_type: ChartType | None = None
    x_axis: str | None = Field(default=None, pattern=COLUMN)
    y_axis: tuple[str, ...] | None = Field(default=None, min_length=1, max_length=8)
    series: str | None = Field(default=None, pattern=COLUMN)
    filters: tuple[Filter, ...] | None = Field(default=None, max_length=20)
    group_by: tuple[str, ...] | None = Field(default=None, max_length=4)


class ChartVersion(Version):
    chart_id: str
    spec: ChartSpec
    source_kind: SourceKind
    source_id: str
    source_version: int
    source_hash: str | None


class ChartDefinition(LifecycleStamps, VersionedObject):
    id_field: ClassVar[str] = "chart_id"
    chart_id: str
    status: Status

