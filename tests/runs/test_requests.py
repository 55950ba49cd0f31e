"""Run requests refused cleanly and on the record, and faults classified as they are (issue 10).

Every refusal of a run request, whatever refused it (the version lookup, the period parser, the
filters, the contract), writes exactly one audit row saying who asked, what, and why. A lost
warehouse connection at any stage is source_unavailable: retried as a new attempt that publishes
once the database is back, with nothing published by the failed attempt.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from orchestration.catalog import templates
from orchestration.db import warehouse
from orchestration.errors import Invalid, NotFound, ServiceError
from orchestration.runs import engine, periods, records
from orchestration.runs.request import ReportRequest
from orchestration.runs.run_record import RunOrigin
from orchestration.services import runs as run_service
from tests.helpers.cli import invoke

from ..conftest import PERIOD, analyst

TODAY = dt.date(2026, 12, 2)


# ------------------------------------------------------------------ periods, parsed strictly


@pytest.mark.parametrize("cadence,key,message", [
    ("monthly", "9999-12", "year out of range"),
    ("monthly", "2026-09junk", "expected YYYY-MM"),
    ("monthly", "2026-13", "expected YYYY-MM"),
    ("monthly", "2026-09-15", "expected YYYY-MM"),
    ("monthly", " 2026-09", "expected YYYY-MM"),
    ("weekly", "2026-06-03", "weeks run Monday to Sunday; the week containing it starts 2026-06-01"),
    ("weekly", "2026-06-01T00:00", "expected YYYY-MM-DD"),
    ("daily", "2026-02-30", "no such day"),
    ("daily", "9999-12-31", "out of range"),
])
def test_a_period_is_parsed_strictly_per_cadence(cadence, key, message):
    with pytest.raises(periods.RequestError, match=message):
        periods.period_window(cadence, key)


@pytest.mark.parametrize("cadence,key,window", [
    ("monthly", "2026-09", ("2026-09", dt.date(2026, 9, 1), dt.date(2026, 10, 1))),
    ("monthly", "2026-09-01", ("2026-09", dt.date(2026, 9, 1), dt.date(2026, 10, 1))),  # Dagster's partition key
    ("weekly", "2026-06-01", ("2026-06-01", dt.date(2026, 6, 1), dt.date(2026, 6, 8))),
    ("daily", "2024-02-29", ("2024-02-29", dt.date(2024, 2, 29), dt.date(2024, 3, 1))),
])
def test_well_formed_periods_still_mean_what_they_did(cadence, key, window):
    assert periods.period_window(cadence, key) == window


@pytest.mark.parametrize("start,end,message", [
    (dt.date(2026, 12, 1), dt.date(2027, 1, 1), "has not ended yet (today is 2026-12-02)"),
    (dt.date(2027, 1, 1), dt.date(2027, 2, 1), "in the future"),
    (dt.date(1, 1, 1), dt.date(2026, 1, 1), "before 2000-01-01"),
    (dt.date(2024, 1, 1), dt.date(2026, 1, 1), "spans 731 days; this template allows at most 366"),
    (dt.date(2026, 5, 1), dt.date(2026, 5, 1), "empty window"),
])
def test_windows_are_bounded(start, end, message):
    with pytest.raises(periods.RequestError, match=re.escape(message)):
        periods.check_window(start, end, today=TODAY)


# ------------------------------------------------------------------ every refusal on the record


def refusals(conn) -> list[dict]:
    with conn, conn.cursor() as cur:
        cur.execute("select actor, target, tenant_id, details from control.audit_log "
                    "where action = 'run.refused' order by seq")
        return [dict(zip(("actor", "target", "tenant_id", "details"), r, strict=True)) for r in cur.fetchall()]


def submission(**changes) -> run_service.RunSubmission:
    args = {"template_key": "incident_summary", "tenant_id": "acme", "requester": analyst("acme"),
            "period": PERIOD, **changes}
    return run_service.RunSubmission(**args)


@pytest.mark.parametrize("changes,error,message", [
    ({"filters": {"severity": None}}, Invalid, "expected name=value"),
    ({"period": "2026-09junk"}, Invalid, "expected YYYY-MM"),
    ({"period": "9999-12"}, Invalid, "year out of range"),
    ({"period": None, "date_from": "2026-06-10", "date_to": "2026-06-01"}, Invalid, "before from date"),
    ({"period": None, "date_from": "0001-01-01", "date_to": "9999-12-31"}, Invalid, "out of range"),
    ({"period": None, "date_from": "2026-06-01"}, Invalid, "needs both --from and --to"),
    ({"period": (dt.date.today().replace(day=1) + dt.timedelta(days=40)).strftime("%Y-%m")}, Invalid, "in the future"),
    ({"template_key": "incident_sumary"}, NotFound, "unknown template incident_sumary; did you mean incident_summary"),
    ({"template_key": "../../templates/incident_summary"}, NotFound, "unknown template"),
    ({"version": 77}, NotFound, "incident_summary v77 has not been submitted"),
    ({"tenant_id": "acmee"}, NotFound, "unknown tenant acmee; did you mean acme?"),
])
def test_every_refused_request_writes_one_audit_row_saying_why(built, conn, changes, error, message):
    before = refusals(conn)
    runs_before = len(records.list_runs(conn, limit=10_000))
    with pytest.raises(error, match=message):
        run_service.submit(conn, submission(**changes))
    after = refusals(conn)
    assert len(after) == len(before) + 1
    row = after[-1]
    assert row["actor"] == analyst("acme") and row["tenant_id"] == changes.get("tenant_id", "acme")
    assert message.split(";")[0] in row["details"]["reason"]
    assert row["details"]["asked"]["template"] == changes.get("template_key", "incident_summary")
    assert len(records.list_runs(conn, limit=10_000)) == runs_before  # refused before anything was recorded


def test_a_wrong_filter_type_is_refused_and_audited_once(built, conn):
    template = templates.load("incident_summary")
    with_filter = template.model_copy(update={"version": 611, "filters": (
        templates.FilterDef(name="min_count", type="integer"),)})
    before = len(refusals(conn))
    with pytest.raises(Invalid, match="expected an integer"):
        run_service.submit(conn, submission(template=with_filter, version=611, filters={"min_count": "lots"}))
    assert len(refusals(conn)) == before + 1


@pytest.mark.parametrize("args,message", [
    (["--period", "9999-12"], "year out of range"),
    (["--from", "0001-01-01", "--to", "9999-12-31"], "out of range"),
    (["--period", "2026-09junk"], "expected YYYY-MM"),
    # issue 14: a period that has not started, or not ended, is refused before anything runs
    (["--period", (dt.date.today().replace(day=1) + dt.timedelta(days=40)).strftime("%Y-%m")], "in the future"),
    (["--period", dt.date.today().strftime("%Y-%m")], "has not ended yet"),
    (["--from", "2026-06-01", "--to", (dt.date.today() + dt.timedelta(days=1)).isoformat()], "has not ended yet"),
])
def test_the_cli_refuses_garbage_windows_in_one_line(built, args, message):
    result = invoke("run", "incident_summary", "--tenant", "acme", *args, "--as", analyst("acme"))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # a handled refusal, not a traceback
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output


def test_refusals_are_service_errors_the_adapters_map(built, conn):
    with pytest.raises(ServiceError):
        run_service.submit(conn, submission(template_key="nope"))


# ------------------------------------------------------------------ connection loss, any stage


@pytest.mark.parametrize("fault", ["render:drop_all_connections", "snapshot_query:drop_all_connections"])
def test_losing_every_connection_is_source_unavailable_and_the_retry_publishes(built, inject, fault):
    """The run's own admin connection (the one the caller passed, as the report_run job does) and the
    reader are terminated from outside, as a database restart would."""
    inject(fault)
    template = templates.load("incident_summary")
    request = ReportRequest.for_period(template, "initech", PERIOD, requester=analyst("initech"), formats=("csv",))
    caller = warehouse.connect()
    try:
        published = engine.run_report(template, request, RunOrigin(), conn=caller)
    finally:
        caller.close()
    with warehouse.connection() as conn:
        retry = records.get_run(conn, published.run_id)
        assert (retry.attempt, retry.state) == (2, "completed")
        first = records.get_run(conn, retry.retry_of)
    assert (first.state, first.failure_class) == ("failed", "source_unavailable")
    assert "connection" in first.diagnosis
    assert first.artifact_location is None and first.snapshot_state in ("abandoned", "none")
    assert (published.location / f"initech_incident_summary_{PERIOD}_internal_summary_by_severity_INTERNAL.csv").exists()
