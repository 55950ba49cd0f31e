"""Keep run records true to what happened in Dagster and to workers that died."""

import dagster as dg

from orchestration.access.policy import SCHEDULER
from orchestration.defs.resources import WarehouseResource
from orchestration.runs import corrections, records, run_tags, supervisor


def end_orphans(conn, dagster_run_id: str, failure_class: str, why: str) -> list[str]:
    """End the report runs a Dagster run left open (cancelled in the queue, crashed around its steps)."""
    ended = []
    for run_id in records.active_runs_of_dagster_run(conn, dagster_run_id):
        supervisor.end_unsuccessfully(conn, run_id, failure_class, why)
        ended.append(run_id)
    return ended


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.CANCELED, monitor_all_code_locations=True,
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      description="A Dagster run cancelled before or while executing ends its report runs as cancelled.")
def report_runs_on_cancel(context: dg.RunStatusSensorContext, warehouse: WarehouseResource):
    with warehouse.connection() as conn:
        ended = end_orphans(conn, context.dagster_run.run_id, "cancelled", "cancelled in Dagster (terminate)")
    if ended:
        context.log.info(f"cancelled report runs {ended}")


@dg.run_failure_sensor(monitor_all_code_locations=True, default_status=dg.DefaultSensorStatus.RUNNING,
                       description="A Dagster run that failed around its steps (worker crash) fails its open report runs.")
def report_runs_on_failure(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    why = f"the Dagster run failed outside the report steps: {context.failure_event.message or ''}".strip()
    with warehouse.connection() as conn:
        ended = end_orphans(conn, context.dagster_run.run_id, "query_failure", why)
    if ended:
        context.log.info(f"failed report runs {ended}")


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Ends runs whose worker process died, and queued runs no worker started "
           "(the worker exited first, or none came within the grace period), and removes what they left behind.")
def reap_dead_workers(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    with warehouse.connection() as conn:
        reaped = supervisor.reap(conn)
    return dg.SkipReason(f"reaped {reaped}" if reaped else "no dead workers")


@dg.sensor(job_name="report_run", minimum_interval_seconds=120, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Corrections: reruns a degraded report once its sources are fresh, and a report whose "
           "window received late-arriving rows when its template says `backfill: correct`.")
def corrections_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    with warehouse.connection() as conn:
        due = corrections.due_corrections(conn)
    if not due:
        return dg.SkipReason("no published run needs a correction")
    return [
        dg.RunRequest(
            # One correction per superseded run, however many ticks see it before it starts.
            run_key=f"correction:{c.run.run_id}",
            run_config={"ops": {"execute_report_run": {"config": corrections.correction_config(c.run, SCHEDULER)}}},
            tags={run_tags.REQUESTER: SCHEDULER, run_tags.TRIGGER: "correction", run_tags.SUPERSEDES: c.run.run_id,
                  run_tags.REASON: c.reason[:200]},
        )
        for c in due
    ]
