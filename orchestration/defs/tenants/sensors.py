"""Tenants are dynamic partitions, kept equal to the tenants table by a sensor."""

import dagster as dg

from orchestration.access import tenants
from orchestration.defs.partitions import tenant_partitions
from orchestration.defs.resources import WarehouseResource


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def tenant_partitions_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    with warehouse.connection() as conn:
        current = tenants.list_tenant_ids(conn)
    add, remove = tenants.partition_changes(current, context.instance.get_dynamic_partitions("tenants"))
    requests = []
    if add:
        requests.append(tenant_partitions.build_add_request(add))
    if remove:
        requests.append(tenant_partitions.build_delete_request(remove))
    if not requests:
        return dg.SkipReason(f"{len(current)} tenants, partitions already in sync")
    return dg.SensorResult(dynamic_partitions_requests=requests)
