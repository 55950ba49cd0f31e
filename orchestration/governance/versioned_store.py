"""The SQL of an object with versions: a header row (tenant, lifecycle, current and active version)
and one immutable row per version. Report definitions, chart definitions and export pipelines
are three such objects; each describes its two tables once (a VersionedTable) and gets the same
create / add_version / get / get_version / list_for / update / mark_version_active from it.

Statements are composed with psycopg2.sql from the table description, which is code: table and
column names never come from a request (column names passed in are checked against the model).
Runs in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Generic, TypeVar

from psycopg2 import sql
from pydantic import BaseModel

from orchestration.governance.versioned import Version, VersionedObject

H = TypeVar("H", bound=VersionedObject)  # the header row's model
V = TypeVar("V", bound=Version)  # a version row's model

# Header columns set at creation and never changed by update(); updated_at is set by every update.
_FIXED = frozenset({"tenant_id", "created_by", "created_at", "updated_at"})
# Version columns add_version() fills itself, or that only mark_version_active() sets.
_VERSION_OWN = frozenset({"version", "created_by", "created_at", "activated_by", "activated_at"})


def _ids(names: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)


@dataclass(frozen=True)
class VersionedTable(Generic[H, V]):
    """Two tables in the control schema, described by their models: the header model's fields are
    the header table's columns, the version model's fields the version table's, and the header
    model's id field is the id column of both."""

    header_table: str  # e.g. "report_definitions"
    version_table: str  # e.g. "report_definition_versions"
    id_prefix: str  # new ids are this plus 16 hex digits
    header_model: type[H]
    version_model: type[V]

    @property
    def id_column(self) -> str:
        return self.header_model.id_field

    @property
    def header_columns(self) -> tuple[str, ...]:
        return tuple(self.header_model.model_fields)

    @property
    def version_columns(self) -> tuple[str, ...]:
        return tuple(self.version_model.model_fields)

    @property
    def updatable(self) -> frozenset[str]:
        return frozenset(self.header_columns) - _FIXED - {self.id_column}

    # ------------------------------------------------------------------ statements

    def _header(self, row) -> H:
        return self.header_model.model_validate(dict(zip(self.header_columns, row, strict=True)))

    def _version(self, row) -> V:
        return self.version_model.model_validate(dict(zip(self.version_columns, row, strict=True)))

    def _tables(self) -> dict[str, sql.Composable]:
        return {"header": sql.Identifier("control", self.header_table),
                "versions": sql.Identifier("control", self.version_table),
                "id": sql.Identifier(self.id_column), "hcols": _ids(self.header_columns),
                "vcols": _ids(self.version_columns)}

    def create(self, conn, *, tenant_id: str, created_by: str, now: dt.datetime) -> H:
        query = sql.SQL("insert into {header} ({id}, tenant_id, created_by, created_at, updated_at)"
                        " values (%s, %s, %s, %s, %s) returning {hcols}").format(**self._tables())
        with conn.cursor() as cur:
            cur.execute(query, (self.id_prefix + secrets.token_hex(8), tenant_id, created_by, now, now))
            return self._header(cur.fetchone())

    def add_version(self, conn, object_id: str, version: int, spec: BaseModel, *, created_by: str,
                    now: dt.datetime, **columns: object) -> V:
        """Version `version` of the object: its spec, and the version table's own columns beside it
        (a validation hash, the source version, ...); pydantic values are stored as JSON."""
        unknown = set(columns) - (set(self.version_columns) - _VERSION_OWN - {self.id_column, "spec"})
        if unknown:
            raise ValueError(f"not a column of {self.version_table}: {sorted(unknown)}")
        values = {self.id_column: object_id, "version": version, "spec": spec, **columns,
                  "created_by": created_by, "created_at": now}
        query = sql.SQL("insert into {versions} ({names}) values ({slots}) returning {vcols}").format(
            names=_ids(tuple(values)), slots=sql.SQL(", ").join(sql.Placeholder() * len(values)), **self._tables())
        with conn.cursor() as cur:
            cur.execute(query, [v.model_dump_json() if isinstance(v, BaseModel) else v for v in values.values()])
            return self._version(cur.fetchone())

    def get(self, conn, object_id: str, *, for_update: bool = False) -> H | None:
        query = sql.SQL("select {hcols} from {header} where {id} = %s" + (" for update" if for_update else ""))
        with conn.cursor() as cur:
            cur.execute(query.format(**self._tables()), (object_id,))
            row = cur.fetchone()
        return self._header(row) if row else None

    def get_version(self, conn, object_id: str, version: int) -> V:
        query = sql.SQL("select {vcols} from {versions} where {id} = %s and version = %s").format(**self._tables())
        with conn.cursor() as cur:
            cur.execute(query, (object_id, version))
            return self._version(cur.fetchone())

    def list_for(self, conn, tenant_ids: list[str] | None, *, statuses: list[str], after: str | None, limit: int,
                 only_set: str | None = None) -> list[H]:
        """Objects of these tenants (None: all) with one of the statuses, in id order after a cursor;
        with `only_set`, only those where that header column is not null."""
        if only_set is not None and only_set not in self.header_columns:
            raise ValueError(f"not a column of {self.header_table}: {only_set}")
        query = sql.SQL(
            """select {hcols} from {header}
                where (%(tenants)s::text[] is null or tenant_id = any(%(tenants)s::text[]))
                  and status = any(%(statuses)s) and (%(after)s::text is null or {id} > %(after)s)
                  and {flag} is not null
                order by {id} limit %(limit)s""").format(
            flag=sql.Identifier(only_set) if only_set else sql.Literal(True), **self._tables())
        with conn.cursor() as cur:
            cur.execute(query, {"tenants": tenant_ids, "statuses": statuses, "after": after, "limit": limit})
            return [self._header(r) for r in cur.fetchall()]

    def update(self, conn, object_id: str, changes: dict[str, object], *, now: dt.datetime) -> H:
        unknown = set(changes) - self.updatable
        if unknown:  # column names come from the service, never from a request
            raise ValueError(f"not updatable: {sorted(unknown)}")
        assigns = [sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c)) for c in changes]
        query = sql.SQL("update {header} set {assigns}, updated_at = %(now)s where {id} = %(id)s"
                        " returning {hcols}").format(assigns=sql.SQL(", ").join(assigns), **self._tables())
        with conn.cursor() as cur:
            cur.execute(query, {**changes, "now": now, "id": object_id})
            return self._header(cur.fetchone())

    def mark_version_active(self, conn, object_id: str, version: int, *, by: str, now: dt.datetime) -> None:
        query = sql.SQL("update {versions} set activated_by = %s, activated_at = %s"
                        " where {id} = %s and version = %s").format(**self._tables())
        with conn.cursor() as cur:
            cur.execute(query, (by, now, object_id, version))
