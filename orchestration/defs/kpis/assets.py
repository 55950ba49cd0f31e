"""The platform's operational KPIs as a daily partitioned asset: each materialization carries the
ten KPI values of its UTC day as float metadata, so the Dagster UI plots them over time.

Thin: the numbers come from services.kpis.platform_day (the same definitions as `nexus-reports
kpis`) and kpis.headline; the warehouse is injected."""


import datetime as dt

import dagster as dg

from orchestration.defs.dbt.assets import dbt_asset_key
from orchestration.defs.partitions import PARTITIONS_START
from orchestration.defs.resources import WarehouseResource
from orchestration.kpis import headline
from orchestration.services import kpis as kpi_service

kpi_days = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START)


def metadata(values: dict[str, float | None]) -> dict[str, dg.MetadataValue]:
    """Floats for the plots; a day with nothing to measure gets null rather than a made-up 0."""
    return {name: dg.MetadataValue.float(value) if value is not None else dg.MetadataValue.null()
            for name, value in values.items()}


@dg.asset(
    key=dg.AssetKey(["kpis", "platform_daily"]),
    partitions_def=kpi_days,
    deps=[dbt_asset_key("analytics", "kpi_daily")],
    group_name="kpis",
    description="The ten operational KPIs (Appendix B) of the whole platform for one UTC day: "
                + "; ".join(f"{n}. {name}: {what}" for name, (n, what) in headline.NAMES.items()) + ".",
)
def platform_kpis_daily(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    day = dt.date.fromisoformat(context.partition_key)
    with warehouse.connection() as conn:
        result = kpi_service.platform_day(conn, day)
    values = headline.headline(result)
    context.log.info(f"KPIs of {day}: {values}")
    return dg.MaterializeResult(metadata=metadata(values))


kpis_daily_job = dg.define_asset_job("kpis_daily_job", selection=[platform_kpis_daily], partitions_def=kpi_days,
                                     description="The platform's KPIs of the day that just ended.")
# 00:30 UTC: yesterday's partition, once its runs have ended (the build's default offset is one day)
kpis_daily_schedule = dg.build_schedule_from_partitioned_job(
    kpis_daily_job, hour_of_day=0, minute_of_hour=30, name="kpis_daily_schedule",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
