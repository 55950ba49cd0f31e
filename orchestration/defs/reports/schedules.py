"""One job per template, and a schedule per cadence built from its partitioned job."""


import dagster as dg

from orchestration.access.policy import SCHEDULER
from orchestration.catalog.templates import Template
from orchestration.defs.reports.assets import REQUESTER_TAG, TRIGGER_TAG, partitions_for, published_key, snapshot_key

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
        tags={"nexus/template": template.key, "nexus/template_version": str(template.version)},
    )


def build_schedule(template: Template, job) -> dg.ScheduleDefinition:
    return dg.build_schedule_from_partitioned_job(
        job,
        name=f"{template.key}_{template.cadence}_schedule",
        hour_of_day=_HOUR,
        tags={TRIGGER_TAG: "schedule", REQUESTER_TAG: SCHEDULER},
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
