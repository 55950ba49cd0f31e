"""One job per template, and a schedule per cadence built from its partitioned job."""


import dagster as dg

from orchestration.access.policy import SCHEDULER
from orchestration.catalog.templates import Template
from orchestration.defs.partitions import partitions_for
from orchestration.defs.reports.assets import published_key, snapshot_key
from orchestration.runs import run_tags

# Reports run after the period closed and the nightly loads landed.
_HOUR = 3


def job_name(template: Template) -> str:
    return f"{template.key}_job"


def build_job(template: Template):
    return dg.define_asset_job(
        job_name(template),
        selection=dg.AssetSelection.assets(snapshot_key(template), published_key(template)),
        partitions_def=partitions_for(template),
        description=f"{template.title} v{template.version} for one tenant and period.",
        tags={run_tags.TEMPLATE: template.key, run_tags.TEMPLATE_VERSION: str(template.version)},
    )


WHEN = {"monthly": "on the 1st of each month", "weekly": "every Monday", "daily": "every day"}
PERIOD = {"monthly": "month", "weekly": "ISO week (Monday to Sunday)", "daily": "day"}


def schedule_description(template: Template) -> str:
    """What the schedule does, in the words of the Schedules page: template, cadence, which tenants."""
    return (f"{template.title} (template {template.key} v{template.version}): {WHEN[template.cadence]} at "
            f"{_HOUR:02d}:00 UTC, the last complete {PERIOD[template.cadence]} "
            + ("for the platform partition (platform-wide)" if template.scope == "platform" else
               "for every tenant in the tenants partition (synced from the tenants table)")
            + f", run as {SCHEDULER}."
            + (" Partitions are keyed by the month's first day: 2026-11-01 is the CLI's --period 2026-11 "
               "(the CLI accepts both)." if template.cadence == "monthly" else ""))


def build_schedule(template: Template, job) -> dg.ScheduleDefinition:
    return dg.build_schedule_from_partitioned_job(
        job,
        description=schedule_description(template),
        name=f"{template.key}_{template.cadence}_schedule",
        hour_of_day=_HOUR,
        tags={run_tags.TRIGGER: "schedule", run_tags.REQUESTER: SCHEDULER},
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
