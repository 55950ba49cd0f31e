"""The daily retention sweep."""

import dagster as dg

from orchestration.defs.resources import WarehouseResource
from orchestration.services import artifacts as artifact_service


@dg.op(description="Expire completed runs past their retention (template days within the sensitivity cap): "
                   "files purged through the artifact store, index rows marked deleted, state expired, audited; "
                   "runs on legal hold are kept.")
def expire_runs(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> None:
    with warehouse.connection() as conn:
        result = artifact_service.sweep(conn)
    context.log.info(f"expired {len(result.expired)} runs: {result.expired}")
    if result.held:
        context.log.info(f"kept {len(result.held)} runs past retention on legal hold: {result.held}")
    if result.failed:
        raise dg.Failure(description=f"the artifact store could not purge {len(result.failed)} runs",
                         metadata={"failed": dg.MetadataValue.json(result.failed)})


@dg.job(description="Retention sweep over published report runs.")
def retention_job():
    expire_runs()


retention_schedule = dg.ScheduleDefinition(job=retention_job, cron_schedule="30 2 * * *",
                                           default_status=dg.DefaultScheduleStatus.RUNNING)
