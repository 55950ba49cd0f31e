"""Dagster's run coordinator for this product: a report launch is checked before the run starts.

A launch from the UI (the `report_run` Launchpad, a report asset's partition, a backfill) goes
through `submit_run`. Before the run is queued, the request is checked as `services.runs` checks
it: requester named, known, active and allowed; template, tenant and window valid. A refused
launch ends as a failed run whose one event says why and what to change: no step runs, no
stack trace. Runs executed in process (the CLI's worker, the demo) are checked in their step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from orchestration.catalog import templates as catalog
from orchestration.defs.resources import WarehouseResource
from orchestration.errors import ServiceError
from orchestration.runs import run_tags
from orchestration.services import runs as run_service

REPORT_RUN_JOB = "report_run"
PARTITION_TAG = "dagster/partition/"
REFUSED_TAG = "nexus/refused"


def report_run_config(run_config: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((run_config.get("ops") or {}).get("execute_report_run") or {}).get("config") or {}


def submission_of(run) -> run_service.RunSubmission | None:
    """The request a Dagster run stands for, or None for runs that are not report runs (dbt, retention)."""
    tags = run.tags
    if run.job_name == REPORT_RUN_JOB:
        config = report_run_config(run.run_config or {})
        return run_service.RunSubmission(
            template_key=str(config.get("template") or ""), version=config.get("version"),
            tenant_id=str(config.get("tenant") or ""),
            requester=str(config.get("requester") or tags.get(run_tags.REQUESTER) or ""),
            period=config.get("period"), date_from=config.get("date_from"), date_to=config.get("date_to"),
            filters=dict(config.get("filters") or {}), formats=tuple(config.get("formats") or ()),
            trigger=str(config.get("trigger") or "manual"),
        )
    template = tags.get(run_tags.TEMPLATE) or _template_of_job(run.job_name) or next(
        (key.path[0] for key in (run.asset_selection or ()) if key.path[-1] in ("snapshot", "published")), None)
    if template is None:
        return None
    return run_service.RunSubmission(
        template_key=template, tenant_id=tags.get(PARTITION_TAG + "tenant", ""),
        requester=tags.get(run_tags.REQUESTER, ""), period=tags.get(PARTITION_TAG + "period"),
        trigger=tags.get(run_tags.TRIGGER, "manual"),
    )


def _template_of_job(job_name: str) -> str | None:
    """A template's own job (`<key>_job`, defs/reports/schedules.py) materializes its report assets."""
    key = job_name.removesuffix("_job")
    return key if key != job_name and key in {t.key for t in catalog.load_all()} else None


def refusal(run) -> str | None:
    """Why this launch is refused, or None (also when it cannot be told here: the step checks again)."""
    submission = submission_of(run)
    if submission is None:
        return None
    with WarehouseResource().connection() as conn:
        try:
            if run.job_name == REPORT_RUN_JOB:
                run_service.check_before_launch(conn, submission)
            else:  # a partition of a report asset: its window is the partition's, checked in the step
                run_service.check_requester(conn, submission)
        except ServiceError as exc:
            return str(exc)
    return None


class NexusRunCoordinator(dg.QueuedRunCoordinator):
    """The queued coordinator, with the report request checked at submission."""

    def submit_run(self, context: dg.SubmitRunContext):
        run = context.dagster_run
        try:
            reason = refusal(run)
        except Exception as exc:  # noqa: BLE001 - e.g. the warehouse is down: the step checks again
            self._logger.warning(f"could not check report launch {run.run_id} before it starts: {exc}")
            reason = None
        if reason is None:
            return super().submit_run(context)
        self._instance.add_run_tags(run.run_id, {REFUSED_TAG: "true"})
        self._instance.report_run_failed(run, message=f"refused before the run started: {' '.join(reason.split())}")
        return self._instance.get_run_by_id(run.run_id)
