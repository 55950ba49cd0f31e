"""Partitions of the report assets: tenant (dynamic, synced from the tenants table) x period."""

import dagster as dg

from orchestration.catalog.templates import Template

PARTITIONS_START = "2025-01-01"
tenant_partitions = dg.DynamicPartitionsDefinition(name="tenants")


def partitions_for(template: Template) -> dg.MultiPartitionsDefinition:
    period = {
        "monthly": dg.MonthlyPartitionsDefinition(start_date=PARTITIONS_START),
        # ISO weeks: Monday to Sunday, keyed by the Monday.
        "weekly": dg.WeeklyPartitionsDefinition(start_date=PARTITIONS_START, day_offset=1),
        "daily": dg.DailyPartitionsDefinition(start_date=PARTITIONS_START),
    }[template.cadence]
    return dg.MultiPartitionsDefinition({"tenant": tenant_partitions, "period": period})
