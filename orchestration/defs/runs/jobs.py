"""`report_run`: one ad-hoc report run, its contract as typed config (shown in the Launchpad).

Any window, any declared filter, a subset of the formats; the requester comes from the config
or the `nexus/requester` tag. The same job executes runs the CLI admitted (config `run_id`).
"""

# No `from __future__ import annotations`: Dagster reads the op's config annotation at runtime.

import dagster as dg
from pydantic import Field

from orchestration.db import warehouse
from orchestration.defs.reports.assets import DEFAULT_REQUESTER, REQUESTER_TAG
from orchestration.runs import engine, launch, records


class ReportRunConfig(dg.Config):
    template: str = Field(description="template key, e.g. incident_summary")
    version: int | None = Field(default=None, description="approved version; default: the newest approved")
    tenant: str = Field(description="exactly one tenant id")
    period: str | None = Field(default=None, description="a period of the template's cadence (YYYY-MM, or a week's Monday)")
    date_from: str | None = Field(default=None, description="ad-hoc window start, YYYY-MM-DD (inclusive)")
    date_to: str | None = Field(default=None, description="ad-hoc window end, YYYY-MM-DD (inclusive)")
    filters: dict[str, str] = Field(default_factory=dict, description="filters the template declares, name: value")
    formats: list[str] = Field(default_factory=list, description="subset of the template's formats; default: all")
    requester: str = Field(default="", description="principal requesting the run; default: the nexus/requester tag")
    trigger: str = Field(default="manual", description="manual, schedule, correction or retry")
    supersedes: str | None = Field(default=None, description="for a correction: the run it supersedes")
    run_id: str | None = Field(default=None, description="a run admitted by the CLI (internal)")


@dg.op(description="Admit, snapshot, Gate B, render and publish one report run.")
def execute_report_run(context: dg.OpExecutionContext, config: ReportRunConfig) -> dg.Output:
    requester = config.requester or context.run.tags.get(REQUESTER_TAG, DEFAULT_REQUESTER)
    with warehouse.connection() as conn:
        try:
            template = launch.resolve_template(conn, config.template, config.version, config.tenant)
            request = launch.build_request(
                template, tenant=config.tenant, requester=requester, period=config.period,
                date_from=config.date_from, date_to=config.date_to,
                filters=launch.parse_filters(template, config.filters), formats=config.formats or None,
                trigger=config.trigger,
            )
            published = engine.run_report(template, request, conn=conn, dagster_run_id=context.run.run_id,
                                            run_id=config.run_id, supersedes=config.supersedes)
        except engine.RunFailed as exc:
            raise dg.Failure(description=exc.diagnosis, allow_retries=False,
                             metadata={"report_run_id": exc.run_id, "failure_class": exc.failure_class,
                                       "retry_guidance": records.GUIDANCE.get(exc.failure_class, "")}) from exc
        except (records.RequestError, engine.AlreadyActive) as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc
    return dg.Output(
        str(published.location),
        metadata={
            "report_run_id": published.run_id,
            "location": dg.MetadataValue.path(str(published.location)),
            "files": dg.MetadataValue.json(published.manifest["files"]),
            "input_hash": published.manifest["input_hash"],
        },
    )


@dg.job(description="An ad-hoc report run: any approved template, one tenant, any window, filters and formats.",
        tags={"nexus/kind": "ad-hoc"})
def report_run():
    execute_report_run()
