"""The shared store of objects with versions, as each resource describes its tables: what a change
may touch (a service can never move an object to another tenant or rewrite who made it), and the
refusal of a column a table does not have, before any SQL is sent."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestration.catalog import chart_store, definition_store
from orchestration.pipelines import store as pipeline_store

LIFECYCLE = {"status", "current_version", "active_version", "activated_at", "archived_at", "reason_code", "reason_text"}
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(("table", "updatable", "id_column"), [
    (definition_store.TABLE, LIFECYCLE | {"deprecated_at", "invalid_since", "invalid_reason", "invalid_fields"},
     "definition_id"),
    (chart_store.TABLE, LIFECYCLE | {"deprecated_at"}, "chart_id"),
    (pipeline_store.TABLE, LIFECYCLE | {"paused_at"}, "pipeline_id"),
])
def test_a_change_touches_the_lifecycle_columns_only(table, updatable, id_column):
    assert table.updatable == updatable
    assert table.id_column == id_column
    assert id_column in table.version_columns
    with pytest.raises(ValueError, match="not updatable: \\['created_by', 'tenant_id'\\]"):
        table.update(None, "x", {"tenant_id": "other", "created_by": "someone"}, now=NOW)


def test_a_version_or_a_list_filter_names_only_columns_of_its_table():
    spec = None  # refused before the spec is read
    with pytest.raises(ValueError, match="not a column of chart_definition_versions: \\['validation_hash'\\]"):
        chart_store.TABLE.add_version(None, "chart_x", 2, spec, created_by="a", now=NOW, validation_hash="h")
    with pytest.raises(ValueError, match="not a column of chart_definition_versions: \\['activated_by'\\]"):
        chart_store.TABLE.add_version(None, "chart_x", 2, spec, created_by="a", now=NOW, activated_by="b")
    with pytest.raises(ValueError, match="not a column of pipelines: invalid_since"):
        pipeline_store.TABLE.list_for(None, None, statuses=["active"], after=None, limit=1, only_set="invalid_since")
