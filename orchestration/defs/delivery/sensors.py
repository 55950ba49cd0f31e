"""Every minute: send the deliveries that are due (new, retries after backoff, stuck sends)."""

import dagster as dg

from orchestration.defs.resources import WarehouseResource
from orchestration.services import delivery


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
