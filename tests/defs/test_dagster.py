"""The Dagster wiring: definitions load, lineage, schedule, sensor, and a real materialization."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from orchestration.catalog import templates
from orchestration.metrics import dbt_manifest
from orchestration.runs import periods, records
from orchestration.settings import REPO_ROOT
from tests.helpers.dagster import sensor_context

from ..conftest import PERIOD, analyst

TEMPLATE = "incident_summary"


@pytest.fixture(scope="module")
def defs(manifest_path):
    from orchestration.definitions import defs

    return defs


def test_dagster_definitions_validate(manifest_path):
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", str(REPO_ROOT / "workspace.yaml")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


def test_report_assets_sit_downstream_of_the_dbt_models_they_read(defs):
    graph = defs.resolve_asset_graph()
    snapshot = dg.AssetKey([TEMPLATE, "snapshot"])
    published = dg.AssetKey([TEMPLATE, "published"])
    parents = graph.get(snapshot).parent_keys
    assert parents == {
        dg.AssetKey(["analytics", "metric_incident_flow_v1"]),
        dg.AssetKey(["analytics", "metric_incident_response_v1"]),
        dg.AssetKey(["analytics", "metric_incident_status_v1"]),
        dg.AssetKey(["analytics", "tenants"]),
    }
    assert graph.get(published).parent_keys == {snapshot}
    check_keys = graph.get(snapshot).check_keys
    assert dg.AssetCheckKey(snapshot, "gate_b") in check_keys
    # dbt lineage continues down to the raw sources
    assert dg.AssetKey(["raw", "incidents"]) in graph.get(dg.AssetKey(["staging", "stg_incidents"])).parent_keys


@pytest.mark.parametrize("template", templates.load_all(), ids=lambda t: t.key)
def test_every_template_is_an_asset_pair_on_exactly_its_models(defs, template):
    graph = defs.resolve_asset_graph()
    snapshot = dg.AssetKey([template.key, "snapshot"])
    node = graph.get(snapshot)
    expected = {dg.AssetKey([dbt_manifest.model(n, v).schema, dbt_manifest.model(n, v).alias])
                for n, v in template.models_read()}
    assert node.parent_keys == expected
    assert graph.get(dg.AssetKey([template.key, "published"])).parent_keys == {snapshot}
    assert dg.AssetCheckKey(snapshot, "gate_b") in node.check_keys
    metadata = node.metadata
    assert metadata["template_version"] == template.version and metadata["sensitivity"] == template.sensitivity
    assert all(f"{m.id} ({m.model} v{m.version})" in metadata["metrics"] for m in template.metrics)
    assert defs.resolve_schedule_def(f"{template.key}_{template.cadence}_schedule")


def test_weekly_schedule_runs_the_last_iso_week(defs, tenant_ids):
    schedule = defs.resolve_schedule_def("connector_health_weekly_schedule")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", tenant_ids)
        monday = dt.datetime(2026, 11, 23, 3, 0, tzinfo=dt.UTC)
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=monday)
        requests = list(schedule.evaluate_tick(context).run_requests)
    assert sorted(r.partition_key for r in requests) == sorted(f"2026-11-16|{t}" for t in tenant_ids)
    assert periods.period_window("weekly", "2026-11-16")[1:] == (dt.date(2026, 11, 16), dt.date(2026, 11, 23))


def test_gate_b_check_is_blocking(defs):
    checks = [c for c in defs.asset_checks if dg.AssetCheckKey(dg.AssetKey([TEMPLATE, "snapshot"]), "gate_b") in c.check_keys]
    assert len(checks) == 1
    spec = next(iter(checks[0].check_specs))
    assert spec.blocking is True


def test_schedule_requests_one_run_per_tenant_for_last_month(defs, tenant_ids):
    schedule = defs.resolve_schedule_def(f"{TEMPLATE}_monthly_schedule")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", tenant_ids)
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=dt.datetime(2026, 11, 1, 3, 0, tzinfo=dt.UTC)
        )
        requests = list(schedule.evaluate_tick(context).run_requests)
    keys = sorted(r.partition_key for r in requests)
    assert keys == sorted(f"2026-10-01|{t}" for t in tenant_ids)
    assert all(r.tags["nexus/trigger"] == "schedule" for r in requests)
    assert len({r.run_key for r in requests}) == len(requests)


def test_tenant_sensor_syncs_partitions(defs, tenant_ids):
    sensor = defs.resolve_sensor_def("tenant_partitions_sensor")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", ["gone-tenant"])
        result = sensor(sensor_context(instance))
        requests = result.dynamic_partitions_requests
        added = [k for r in requests if isinstance(r, dg.AddDynamicPartitionsRequest) for k in r.partition_keys]
        deleted = [k for r in requests if isinstance(r, dg.DeleteDynamicPartitionsRequest) for k in r.partition_keys]
        assert sorted(added) == sorted(tenant_ids)
        assert deleted == ["gone-tenant"]


def stage_lines(instance, run_id: str) -> list[str]:
    """The run's own log lines (context.log), in order: what the Dagster UI shows."""
    return [e.user_message for e in instance.all_logs(run_id) if not e.is_dagster_event
            and e.user_message.split(":", 1)[0] in ("freshness", "snapshot", "Gate B", "render", "publish")]


def test_owners_and_schedule_descriptions(defs):
    graph = defs.resolve_asset_graph()
    for template in templates.load_all():
        for part in ("snapshot", "published"):
            assert graph.get(dg.AssetKey([template.key, part])).owners == [template.owner]
        schedule = defs.resolve_schedule_def(f"{template.key}_{template.cadence}_schedule")
        where = "the platform partition" if template.scope == "platform" else "every tenant"
        assert template.key in schedule.description and where in schedule.description
    metric = dbt_manifest.model("metric_incident_status", 1)
    owner = dbt_manifest.load_manifest()["nodes"][metric.unique_id]["config"]["meta"]["owner"]
    assert graph.get(dg.AssetKey([metric.schema, metric.alias])).owners == [owner]


def _materialize(defs, instance, tenant: str, period: str, requester: str | None = None):
    job = defs.resolve_job_def(f"{TEMPLATE}_job")
    return job.execute_in_process(
        instance=instance,
        partition_key=dg.MultiPartitionKey({"tenant": tenant, "period": f"{period}-01"}),
        tags={"nexus/requester": requester or analyst(tenant)},
        raise_on_error=False,
    )


def test_materializing_a_partition_publishes_the_report(built, defs, conn, tenant_ids):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", tenant_ids)
        result = _materialize(defs, instance, tenant_ids[1], PERIOD)
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert [c.passed for c in checks] == [True]
        published = [m for m in result.get_asset_materialization_events()
                     if m.asset_key == dg.AssetKey([TEMPLATE, "published"])]
        assert len(published) == 1
        log = stage_lines(instance, result.run_id)
        metadata = published[0].materialization.metadata
        gate = checks[0].metadata
    # issue 14: each stage in the Dagster log, Gate B as counts, the files as a table, no local path
    assert [line.split(":", 1)[0] for line in log] == (
        ["freshness", "snapshot", "Gate B"] + ["render"] * 5 + ["publish"]), log
    assert gate["evaluated"].value >= 1 and gate["met"].value == gate["evaluated"].value
    assert f"Gate B: passed, {gate['met'].value} of {gate['evaluated'].value} expectations met" in log[2]
    files = metadata["files"].value.records
    assert sorted(r.data["format"] for r in files) == ["csv", "json", "pdf", "xlsx"]
    assert all(r.data["bytes"] > 0 and len(r.data["sha256"]) == 64 for r in files)
    assert not [v for v in metadata.values() if isinstance(v, dg.PathMetadataValue)]
    assert metadata["run (Reporting API)"].value.startswith("http://")
    record = records.run_for_dagster_run(conn, result.run_id, TEMPLATE)
    assert record.state == "completed" and record.requester == analyst(tenant_ids[1])
    assert record.tenant_id == tenant_ids[1] and record.period_key == PERIOD
    location = Path(record.artifact_location)
    assert (location / "manifest.json").exists()
    assert len(list(location.iterdir())) == 6  # files, manifest.json, manifest.sig.json
    rows = sum(record.row_counts.values())
    assert f"snapshot: {rows:,} rows" in log[1]
    for entry in (f for f in json.loads((location / "manifest.json").read_text())["files"]):
        assert any(line.startswith(f"render: {entry['format']} (internal) {entry['name']}, {entry['rows']:,} rows")
                   for line in log), (entry, log)
    assert log[-1] == f"publish: 4 files and manifest.json at {location}"


def test_gate_b_failure_in_dagster_blocks_published(built, defs, conn, tenant_ids, artifacts_root):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", tenant_ids)
        result = _materialize(defs, instance, tenant_ids[0], "2025-01")  # before any data: empty mandatory sections
        assert not result.success
        checks = result.get_asset_check_evaluations()
        assert [c.passed for c in checks] == [False]
        materialized = {m.asset_key for m in result.get_asset_materialization_events()}
        assert dg.AssetKey([TEMPLATE, "published"]) not in materialized
    record = records.run_for_dagster_run(conn, result.run_id, TEMPLATE)
    assert record.state == "failed" and record.failure_class == "validation_failed"
    assert not (artifacts_root / tenant_ids[0] / TEMPLATE / "2025-01").exists()
