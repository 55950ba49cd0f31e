"""A launch from the Dagster UI is checked before the run starts (issue 14): the requester in the
typed config (or the nexus/requester tag) against the principals table, and the request's template,
tenant and window. A refused launch is a failed run with one line saying why and what to change,
no step ran, and the refusal is in the audit log."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from orchestration.defs.runs import coordinator
from orchestration.runs import records
from orchestration.services import runs as run_service

from ..conftest import PERIOD, analyst

COORDINATOR = {"module": "orchestration.defs.runs.coordinator", "class": "NexusRunCoordinator"}
NEXT_MONTH = (dt.date.today().replace(day=1) + dt.timedelta(days=32)).strftime("%Y-%m")


@pytest.fixture()
def instance():
    with dg.instance_for_test(overrides={"run_coordinator": COORDINATOR}) as instance:
        yield instance


def create(instance, job_name: str, config: dict | None = None, tags: dict | None = None):
    from orchestration.definitions import defs

    job = defs.resolve_job_def(job_name)
    run_config = {"ops": {"execute_report_run": {"config": config}}} if config is not None else {}
    return instance.create_run_for_job(job, run_config=run_config, tags=tags or {})


def launch(instance, job_name: str, config: dict | None = None, tags: dict | None = None):
    """What the Launchpad's button does: create the run, submit it to the instance's coordinator."""
    run = create(instance, job_name, config, tags)
    return instance.run_coordinator.submit_run(dg.SubmitRunContext(run, workspace=None))


def accepted(instance, job_name: str, config: dict | None = None, tags: dict | None = None) -> bool:
    """Whether the coordinator lets the launch through to the queue (queuing itself needs the
    code location's origin, which only a launch from the webserver carries)."""
    return coordinator.refusal(create(instance, job_name, config, tags)) is None


def refusal_of(instance, run) -> str:
    """The refused run's one message; and proof that nothing was executed."""
    events = [e for e in instance.all_logs(run.run_id) if e.is_dagster_event]
    assert not [e for e in events if e.dagster_event.is_step_event], "a step ran"
    failures = [e for e in events if e.dagster_event_type == dg.DagsterEventType.RUN_FAILURE]
    assert len(failures) == 1
    return failures[0].message


def request(**changes) -> dict:
    return {"template": "incident_summary", "tenant": "acme", "period": PERIOD, "requester": analyst("acme"),
            **changes}


def refusal_rows(conn) -> int:
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from control.audit_log where action = 'run.refused'")
        return cur.fetchone()[0]


@pytest.mark.parametrize("changes,message", [
    ({"requester": ""}, "no requester: set `requester` in the run config (or the nexus/requester tag)"),
    ({"requester": "analyst@acme.exmple"}, "unknown requester analyst@acme.exmple: not in the principals table; "
                                           "did you mean analyst@acme.example"),
    ({"requester": analyst("globex")}, "analyst@globex.example may not run incident_summary v1 for acme: "
                                       "analyst@globex.example is not a member of tenant acme"),
    ({"period": NEXT_MONTH}, "in the future"),
    ({"template": "incident_sumary"}, "unknown template incident_sumary; did you mean incident_summary"),
    ({"tenant": "acmee"}, "unknown tenant acmee; did you mean acme?"),
])
def test_a_refused_launch_fails_before_any_step_with_one_line(built, conn, instance, changes, message):
    audited = refusal_rows(conn)
    runs_before = len(records.list_runs(conn, limit=10_000))
    run = launch(instance, "report_run", request(**changes))
    assert run.status == dg.DagsterRunStatus.FAILURE and run.tags["nexus/refused"] == "true"
    line = refusal_of(instance, run)
    assert line.startswith("refused before the run started: ") and message in line, line
    assert "\n" not in line and "Traceback" not in line
    assert refusal_rows(conn) == audited + 1
    assert len(records.list_runs(conn, limit=10_000)) == runs_before  # no report run was recorded


def test_the_config_or_the_tag_names_the_requester(built, instance):
    assert accepted(instance, "report_run", request())
    assert accepted(instance, "report_run", request(requester=""), tags={"nexus/requester": analyst("acme")})


def test_a_report_partition_launched_without_a_requester_is_refused(built, instance, tenant_ids):
    partition = {"dagster/partition": f"{PERIOD}-01|acme", "dagster/partition/tenant": "acme",
                 "dagster/partition/period": f"{PERIOD}-01"}
    refused = launch(instance, "incident_summary_job", tags=partition)
    assert refused.status == dg.DagsterRunStatus.FAILURE
    assert run_service.MISSING_REQUESTER in refusal_of(instance, refused)
    assert accepted(instance, "incident_summary_job", tags={**partition, "nexus/requester": analyst("acme")})


def test_other_jobs_are_not_report_launches(built, instance):
    run = create(instance, "retention_job")
    assert coordinator.submission_of(run) is None and coordinator.refusal(run) is None


def test_in_process_without_a_requester_is_refused_in_one_line(built):
    from orchestration.definitions import defs

    with dg.instance_for_test() as plain:
        result = defs.resolve_job_def("report_run").execute_in_process(
            run_config={"ops": {"execute_report_run": {"config": request(requester="")}}}, instance=plain,
            raise_on_error=False)
    assert not result.success
    message = result.failure_data_for_node("execute_report_run").error.message
    assert "refused: no requester" in message and message.count("\n") <= 1
