"""The single Dagster entry point (loaded by workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from orchestration.catalog import templates as catalog
from orchestration.defs import cluster
from orchestration.defs.dbt.assets import dbt_resource, nexus_dbt_models
from orchestration.defs.delivery.sensors import delivery_outbox_sensor, pipeline_runs_sensor
from orchestration.defs.kpis.assets import kpis_daily_job, kpis_daily_schedule, platform_kpis_daily
from orchestration.defs.reports.assets import build_report_assets
from orchestration.defs.reports.checks import build_gate_b_check
from orchestration.defs.reports.schedules import build_job, build_schedule
from orchestration.defs.resources import RESOURCES
from orchestration.defs.retention.schedules import retention_job, retention_schedule
from orchestration.defs.runs.jobs import report_run
from orchestration.defs.runs.sensors import (
    corrections_sensor,
    reap_dead_workers,
    report_runs_on_cancel,
    report_runs_on_failure,
)
from orchestration.defs.schedules.sensors import build_runtime_schedules_sensor
from orchestration.defs.tenants.sensors import tenant_partitions_sensor

templates = catalog.load_all()
report_assets = [asset for t in templates for asset in build_report_assets(t)]
gate_b_checks = [build_gate_b_check(t) for t in templates]
report_jobs = {t.key: build_job(t) for t in templates}
report_schedules = [build_schedule(t, report_jobs[t.key]) for t in templates]
runtime_schedules_sensor = build_runtime_schedules_sensor(report_jobs)
dbt_build_job = dg.define_asset_job(
    "dbt_build_job",
    selection=dg.AssetSelection.assets(nexus_dbt_models),
    description="dbt build: staging views, metric models, data tests and unit tests.",
)

defs = dg.Definitions(
    assets=[nexus_dbt_models, *report_assets, platform_kpis_daily],
    asset_checks=gate_b_checks,
    jobs=[dbt_build_job, report_run, retention_job, kpis_daily_job, *report_jobs.values()],
    schedules=[*report_schedules, retention_schedule, kpis_daily_schedule],
    sensors=[tenant_partitions_sensor, runtime_schedules_sensor, report_runs_on_cancel, report_runs_on_failure,
             reap_dead_workers, corrections_sensor, delivery_outbox_sensor, pipeline_runs_sensor],
    resources={"dbt": dbt_resource, **RESOURCES},
    # A run's steps in the process that runs it (a warm pool worker, or the launched process):
    # Dagster's default would start a process per step, each importing everything again. On a
    # cluster, REPORTS_EXECUTOR=k8s runs each step as a Kubernetes Job (defs/cluster.py).
    executor=cluster.executor_from_env() or dg.in_process_executor,
)
