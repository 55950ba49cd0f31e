"""The chart tables, control.chart_definitions and their versions, described for the shared
versioned-object statements (governance/versioned_store.py): the only SQL on them. Runs in the
caller's transaction."""

from __future__ import annotations

from orchestration.catalog.chart_definitions import ChartDefinition, ChartVersion
from orchestration.governance.versioned_store import VersionedTable

TABLE = VersionedTable(header_table="chart_definitions", version_table="chart_definition_versions",
                       id_prefix="chart_", header_model=ChartDefinition, version_model=ChartVersion)
get_version = TABLE.get_version
