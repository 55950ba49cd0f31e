"""Partitions of the report assets: tenant (dynamic, synced from the tenants table) x period.
A platform-wide template (scope: platform) has the platform partition in place of the tenants."""

import dagster as dg

from orchestration.access.tenants import PLATFORM
from orchestration.catalog.templates import Template

PARTITIONS_START = "2025-01-01"
tenant_partitions = dg.DynamicPartitionsDefinition(name="tenants")
platform_partition = dg.StaticPartitionsDefinition([PLATFORM])


def partitions_for(template: Template) -> dg.MultiPartitionsDefinition:
    period = {
        "monthly": dg.MonthlyPartitionsDefinition(start_date=PARTITIONS_START),
        # ISO weeks: Monday to Sunday, keyed by the Monday.
        "weekly": dg.WeeklyPartitionsDefinition(start_date=PARTITIONS_START, day_offset=1),
        "daily": dg.DailyPartitionsDefinition(start_date=PARTITIONS_START),
    }[template.cadence]
    tenant = platform_partition if template.scope == "platform" else tenant_partitions
    return dg.MultiPartitionsDefinition({"tenant": tenant, "period": period})
