"""Every minute: send the deliveries that are due (new, retries after backoff, stuck sends); every
30 seconds: settle the export pipeline batches whose member runs ended."""

import dagster as dg

from orchestration.defs.resources import WarehouseResource
from orchestration.services import delivery, pipeline_runs


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Sends due report deliveries (e-mail, webhook, bucket) from the outbox; "
           "transient failures are retried with exponential backoff.")
def delivery_outbox_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    with warehouse.connection() as conn:
        attempts = delivery.send_due(conn)
    if not attempts:
        return dg.SkipReason("no delivery due")
    summary = {}
    for a in attempts:
        summary[a["status"]] = summary.get(a["status"], 0) + 1
    for a in attempts:
        if a["status"] != "sent":
            context.log.warning(f"delivery {a['delivery_id']} {a['channel']}:{a['address']}: {a['status']} ({a['error']})")
    return dg.SkipReason(f"delivery attempts: {summary}")


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Settles export pipeline batches nobody is watching: records each member run "
           "that ended and delivers the published ones once to the pipeline's destination.")
def pipeline_runs_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    with warehouse.connection() as conn:
        ended = pipeline_runs.settle_pending(conn)
    if not ended:
        return dg.SkipReason("no pipeline batch ended")
    for batch in ended:
        failed = ", ".join(m.member for m in batch.failed)
        context.log.info(f"pipeline run {batch.pipeline_run_id}: {batch.status}" + (f" (failed: {failed})" if failed else ""))
    return dg.SkipReason(f"{len(ended)} pipeline batch(es) ended")
