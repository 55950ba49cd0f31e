"""Executing an admitted run as Dagster's `report_run` job on the instance (the UI shows it
with its logs): what a worker process does for the CLI and the Reporting API, and what the demo
does in its own process."""

from __future__ import annotations

from orchestration.db import warehouse
from orchestration.defs import dagster_home
from orchestration.runs import run_tags
from orchestration.runs.run_record import RunRecord, run_config_of
from orchestration.services import runs as run_service

QUIET_LOGGERS = {"console": {"config": {"log_level": "WARNING"}}}


def execute_admitted(run_id: str) -> bool:
    """Run the admitted run's steps in this process; True when the Dagster run succeeded."""
    import dagster as dg

    from orchestration.definitions import defs

    dagster_home.prepare()
    with warehouse.connection() as conn:
        record = run_service.show(conn, run_id).record
    result = defs.resolve_job_def("report_run").execute_in_process(
        run_config=admitted_run_config(record), instance=dg.DagsterInstance.get(), tags=admitted_run_tags(record),
        raise_on_error=False,
    )
    return result.success


def admitted_run_tags(record: RunRecord) -> dict[str, str]:
    """The Dagster tags of an admitted run's `report_run` run (here, or submitted by the pool)."""
    tags = {run_tags.REQUESTER: record.requester, run_tags.TRIGGER: record.trigger, run_tags.REPORT_RUN: record.run_id}
    if record.correlation_id:
        tags[run_tags.CORRELATION] = record.correlation_id
    if record.schedule_id:  # a definition schedule's tick: the Dagster UI shows which
        tags[run_tags.SCHEDULE] = record.schedule_id
    return tags


def admitted_run_config(record: RunRecord) -> dict:
    """The `report_run` config that executes the admitted record (config run_id)."""
    return {"ops": {"execute_report_run": {"config": run_config_of(record, run_id=record.run_id)}},
            "loggers": QUIET_LOGGERS}
