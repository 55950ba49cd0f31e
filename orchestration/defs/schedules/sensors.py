"""Runtime schedules (control.schedules) evaluated every 30 s: one run per tick, at most.

The rules live in orchestration/schedules/evaluation.py, run by services/schedules.evaluate;
this sensor supplies the clock, the
Dagster instance's view of active runs, and the template jobs' partition keys. A definition
schedule's tick is submitted by the service as a definition run (a worker executes the
`report_run` job on this instance, as for an API request); the sensor only logs it.
"""

import datetime as dt
from typing import Any

import dagster as dg

from orchestration.catalog import templates
from orchestration.defs.resources import WarehouseResource
from orchestration.runs import run_tags
from orchestration.schedules import evaluation as schedule_evaluation
from orchestration.schedules.timing import tick_iso
from orchestration.services import schedules as schedule_service

SENSOR_NAME = "runtime_schedules_sensor"
ACTIVE_STATUSES = [getattr(dg.DagsterRunStatus, s) for s in schedule_evaluation.ACTIVE_RUN_STATUSES]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def active_run_lookup(instance: dg.DagsterInstance):
    def has_active_run(schedule_id: int) -> bool:
        runs = instance.get_runs(
            filters=dg.RunsFilter(tags={run_tags.SCHEDULE: str(schedule_id)}, statuses=ACTIVE_STATUSES),
            limit=1,
        )
        return bool(runs)

    return has_active_run


def period_from_job(jobs_by_template: dict[str, Any]):
    """The last complete period as of the tick, as the job's time dimension names it."""

    def period_for(template: templates.Template, tick_at: dt.datetime) -> str:
        time_dimension = jobs_by_template[template.key].partitions_def.time_window_dimension.partitions_def
        with dg.partition_loading_context(effective_dt=tick_at):
            key = time_dimension.get_last_partition_key()
        if key is None:
            raise ValueError(f"{template.label}: no complete period before {tick_at.isoformat()}")
        return key

    return period_for


def to_run_request(request: schedule_evaluation.TickRequest, job_name: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=request.run_key,
        job_name=job_name,
        partition_key=dg.MultiPartitionKey({"tenant": request.tenant_id, "period": request.period_key}),
        tags=request.tags,
    )


def build_runtime_schedules_sensor(jobs_by_template: dict[str, Any]) -> dg.SensorDefinition:
    """`jobs_by_template`: template key -> its partitioned job (defs/reports/schedules.build_job)."""

    @dg.sensor(
        name=SENSOR_NAME,
        jobs=list(jobs_by_template.values()),
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Runs the schedules defined at runtime (nexus-reports schedules create): one run per tick.",
    )
    def runtime_schedules_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        with warehouse.connection() as conn:
            evaluation = schedule_service.evaluate(
                conn, _now(), active_run_lookup(context.instance), period_for=period_from_job(jobs_by_template)
            )
            # Requests recorded moments ago are handed over again in case the last evaluation
            # died before Dagster stored them; Dagster launches one run per run key.
            new_keys = {r.run_key for r in evaluation.requests}
            repeated = [r for r in schedule_evaluation.recent_requests(conn) if r.run_key not in new_keys]
        requests = [to_run_request(r, jobs_by_template[r.template_key].name) for r in evaluation.requests + repeated]
        for run_key, run_id in evaluation.submitted.items():
            context.log.info(f"{run_key}: definition run {run_id} submitted")
        skipped = [r for r in evaluation.recorded if r.outcome != "requested"]
        for r in skipped:
            context.log.info(f"schedule {r.schedule_id} tick {tick_iso(r.tick_at)}: {r.outcome} ({r.reason})")
        if not requests:
            if evaluation.submitted:
                return dg.SkipReason(f"{len(evaluation.submitted)} definition run(s) submitted; no template tick due")
            return dg.SkipReason(f"no schedule tick due ({len(skipped)} ticks skipped or refused)")
        return dg.SensorResult(run_requests=requests)

    return runtime_schedules_sensor
