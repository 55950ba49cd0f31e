"""The daily retention sweep."""

import dagster as dg

from ... import retention, warehouse


@dg.op(description="Expire completed runs past their template's retention: files removed, state expired, audited.")
def expire_runs(context: dg.OpExecutionContext) -> None:
    with warehouse.connection() as conn:
        expired = retention.expire(conn)
    context.log.info(f"expired {len(expired)} runs: {expired}")


@dg.job(description="Retention sweep over published report runs.")
def retention_job():
    expire_runs()


retention_schedule = dg.ScheduleDefinition(job=retention_job, cron_schedule="30 2 * * *",
                                           default_status=dg.DefaultScheduleStatus.RUNNING)
