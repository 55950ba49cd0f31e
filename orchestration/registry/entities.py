"""Reportable entities: what the report builder may read, as data (never SQL).

An entry names a dbt model (and version) and the fields it exposes, each with its type,
classification, masking rule and what the builder may do with it (filter, group, aggregate),
plus the join paths to other entries. Identifiers are checked against one strict pattern and
against the dbt manifest, so the query builder only ever quotes names that came from here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestration.governance import versioned
from orchestration.governance.versioned import LifecycleStamps, Status

IDENTIFIER = r"^[a-z][a-z0-9_]{0,62}$"
Classification = Literal["public", "internal", "confidential", "restricted", "pii"]
FieldType = Literal["text", "integer", "bigint", "numeric", "boolean", "date", "timestamptz"]
Masking = Literal["none", "mask", "hash", "truncate"]


class _Strict(BaseModel):
    # Not strict: JSON arrays arrive as lists and timestamps as text; extra keys are still refused.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSource(_Strict):
    model: str = Field(pattern=IDENTIFIER, description="a dbt model in the analytics schema")
    version: int | None = Field(default=None, ge=1, description="the dbt model version (None: unversioned)")


class FieldSpec(_Strict):
    name: str = Field(pattern=IDENTIFIER)
    type: FieldType
    classification: Classification = "internal"
    masking: Masking = "none"
    filterable: bool = True
    groupable: bool = True
    aggregatable: bool = False


class JoinKey(_Strict):
    field: str = Field(pattern=IDENTIFIER, description="a field of this entity")
    to_field: str = Field(pattern=IDENTIFIER, description="a field of the joined entity")


class JoinSpec(_Strict):
    to_entity: str = Field(pattern=IDENTIFIER, description="entity_name of an entry visible to the same tenant")
    keys: tuple[JoinKey, ...] = Field(min_length=1)
    kind: Literal["inner", "left"] = "inner"


def _unique_fields(fields: tuple[FieldSpec, ...] | None) -> None:
    if fields is None:
        return
    seen: set[str] = set()
    for spec in fields:
        if spec.name in seen:
            raise ValueError(f"field {spec.name!r} is declared twice")
        seen.add(spec.name)
    if "tenant_id" not in seen:
        raise ValueError("allowed_fields must include tenant_id (every entity is tenant-scoped)")


class EntityCreate(_Strict):
    entity_name: str = Field(pattern=IDENTIFIER)
    data_source: DataSource
    allowed_fields: tuple[FieldSpec, ...] = Field(min_length=1)
    joins: tuple[JoinSpec, ...] = ()
    classification: Classification
    vertical_scope: tuple[str, ...] = Field(default=(), description="verticals this entity serves; empty: all")
    geo_scope: tuple[str, ...] = Field(default=(), description="regions this entity serves; empty: all")
    tenant_id: str | None = Field(default=None, description="a tenant's own entry; omit for a system entry")

    @model_validator(mode="after")
    def _fields_unique(self) -> EntityCreate:
        _unique_fields(self.allowed_fields)
        return self


class EntityUpdate(_Strict):
    allowed_fields: tuple[FieldSpec, ...] | None = Field(default=None, min_length=1)
    joins: tuple[JoinSpec, ...] | None = None
    classification: Classification | None = None
    status: Literal["active"] | None = Field(
        default=None, description="only activation; deprecate and archive need a reason (their own endpoints)"
    )

    @model_validator(mode="after")
    def _fields_unique(self) -> EntityUpdate:
        _unique_fields(self.allowed_fields)
        return self


class Entity(LifecycleStamps):
    entity_id: str
    tenant_id: str | None
    entity_name: str
    data_source: DataSource
    allowed_fields: tuple[FieldSpec, ...]
    joins: tuple[JoinSpec, ...]
    classification: Classification
    vertical_scope: tuple[str, ...]
    geo_scope: tuple[str, ...]
    status: Status
    version: int

    @property
    def etag(self) -> str:
        return versioned.etag(self.entity_id, self.version)
