"""`report_run`: one ad-hoc report run, its contract as typed config (shown in the Launchpad).

Any window, any declared filter, a subset of the formats; the requester comes from the config
or the `nexus/requester` tag. The same job executes runs the CLI admitted (config `run_id`).
A launch from the UI is checked before it starts (defs/runs/coordinator.py); a run executed in
process is checked here, before any query, with the same one-line refusals.
"""

# No `from __future__ import annotations`: Dagster reads the op's config annotation at runtime.

import dagster as dg
from pydantic import Field

from orchestration.catalog import templates as catalog
from orchestration.defs.reports import metadata as report_metadata
from orchestration.defs.resources import WarehouseResource
from orchestration.errors import ServiceError
from orchestration.runs import run_tags, stage_log
from orchestration.runs.failures import GUIDANCE, RunFailed
from orchestration.runs.run_record import RunOrigin
from orchestration.services import delivery as delivery_service
from orchestration.services import runs as run_service


class ReportRunConfig(dg.Config):
    template: str = Field(description="template key, e.g. incident_summary")
    version: int | None = Field(default=None, description="approved version; default: the newest approved")
    tenant: str = Field(description="exactly one tenant id")
    period: str | None = Field(default=None, description="a period of the template's cadence (YYYY-MM, or a week's Monday)")
    date_from: str | None = Field(default=None, description="ad-hoc window start, YYYY-MM-DD (inclusive)")
    date_to: str | None = Field(default=None, description="ad-hoc window end, YYYY-MM-DD (inclusive)")
    filters: dict[str, str] = Field(default_factory=dict, description="filters the template declares, name: value")
    formats: list[str] = Field(default_factory=list, description="subset of the template's formats; default: all")
    requester: str = Field(default="", description="required: the principal the run is for, e.g. "
                           "analyst@acme.example (a known, active principal with a role the template allows and a "
                           "member of the tenant); may instead be given as the nexus/requester tag")
    trigger: str = Field(default="manual", description="manual, schedule, correction or retry")
    supersedes: str | None = Field(default=None, description="for a correction: the run it supersedes")
    run_id: str | None = Field(default=None, description="a run admitted by the CLI (internal)")

    def submission(self, tags) -> run_service.RunSubmission:
        return run_service.RunSubmission(
            template_key=self.template, version=self.version, tenant_id=self.tenant,
            requester=self.requester or tags.get(run_tags.REQUESTER, ""),
            period=self.period, date_from=self.date_from, date_to=self.date_to, filters=dict(self.filters),
            formats=tuple(self.formats), trigger=self.trigger,
        )


@dg.op(description="Admit, snapshot, Gate B, render and publish one report run.")
def execute_report_run(context: dg.OpExecutionContext, config: ReportRunConfig,
                       warehouse: WarehouseResource) -> dg.Output:
    origin = RunOrigin(dagster_run_id=context.run.run_id, run_id=config.run_id, supersedes=config.supersedes)
    submission = config.submission(context.run.tags)
    with warehouse.connection() as conn, stage_log.listening(context.log.info):
        # `from None`: a refusal is one line in the run's log, not a chain of tracebacks.
        try:
            if not submission.requester:
                run_service.check_requester(conn, submission)
            published = run_service.execute(conn, submission, origin)
        except RunFailed as exc:
            raise dg.Failure(description=f"run {exc.run_id} {exc.failure_class}: {exc.diagnosis}",
                             allow_retries=False,
                             metadata={"report_run_id": exc.run_id, "failure_class": exc.failure_class,
                                       "retry_guidance": GUIDANCE.get(exc.failure_class, "")}) from None
        except ServiceError as exc:
            raise dg.Failure(description=f"refused: {exc}", allow_retries=False) from None
        record = run_service.show(conn, published.run_id).record
        if record.schedule_id:
            # Step 6, as a template's published asset does: a scheduled run (a definition's
            # schedule) goes to its schedule's recipients through the outbox, under Gate C.
            context.log.info(f"delivery: {delivery_service.deliver_scheduled_run(conn, published.run_id)}")
    template = catalog_template(record.template_key, record.template_version)
    if template is not None:  # a system template: its published asset shows this run in its history
        context.log_event(report_metadata.on_published_asset(
            template, record.request_object(), published.run_id, published.manifest, published.location,
            context.instance))
    return dg.Output(str(published.location),
                     metadata=report_metadata.published(published.run_id, published.manifest, published.location))


def catalog_template(key: str, version: int):
    """The system template version a run used, if it is one (definitions and tenant templates have no asset)."""
    return next((t for t in catalog.load_all() if (t.key, t.version) == (key, version)), None)


@dg.job(description="An ad-hoc report run: any approved template, one tenant, any window, filters and formats.",
        tags={run_tags.KIND: "ad-hoc"})
def report_run():
    execute_report_run()
