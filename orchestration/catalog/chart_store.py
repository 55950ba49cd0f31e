"""The only SQL on control.chart_definitions and their versions: the shared versioned-object
statements (governance/versioned_store.py) bound to the chart tables. Runs in the caller's transaction."""

from __future__ import annotations

import datetime as dt

from orchestration.catalog.chart_definitions import ChartDefinition, ChartSpec, ChartVersion
from orchestration.governance.versioned_store import VersionedTable

TABLE = VersionedTable(header_table="chart_definitions", version_table="chart_definition_versions",
                       id_column="chart_id", id_prefix="chart_", header_model=ChartDefinition,
                       version_model=ChartVersion)

create = TABLE.create
get = TABLE.get
get_version = TABLE.get_version
list_for = TABLE.list_for
update = TABLE.update
mark_version_active = TABLE.mark_version_active


def add_version(conn, chart_id: str, version: int, spec: ChartSpec, *, source_version: int, source_hash: str | None,
                created_by: str, now: dt.datetime) -> ChartVersion:
    return TABLE.add_version(conn, chart_id, version, spec, source_kind=spec.source_kind, source_id=spec.source_id,
                             source_version=source_version, source_hash=source_hash, created_by=created_by, now=now)
