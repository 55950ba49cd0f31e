"""Source freshness, degraded output in every format, and corrections for degraded runs and
late-arriving data, with their supersession chain."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import dagster as dg
import openpyxl
import pytest
from pypdf import PdfReader

from orchestration.access import policy
from orchestration.catalog import templates
from orchestration.runs import corrections, engine, failures, freshness, publish, records
from orchestration.runs.request import ReportRequest
from orchestration.runs.run_record import RunOrigin
from orchestration.services import runs as run_service
from tests.helpers.dagster import sensor_context

from ..conftest import PERIOD


def files_of(published: publish.Published) -> dict[str, object]:
    return {f["format"]: published.location / f["name"] for f in published.manifest["files"]}


@contextlib.contextmanager
def raw_rows(conn, table: str, rows: list[dict]):
    """Rows a loader landed late; removed afterwards so other tests see the seeded data."""
    with conn, conn.cursor() as cur:
        for row in rows:
            cur.execute(f"insert into raw.{table} ({', '.join(row)}) values ({', '.join(['%s'] * len(row))})",
                        list(row.values()))
    try:
        yield
    finally:
        key = "incident_id" if table == "incidents" else "event_id"
        with conn, conn.cursor() as cur:
            cur.execute(f"delete from raw.{table} where {key} = any(%s)", ([r[key] for r in rows],))


def incident(incident_id: int, tenant: str, opened: str, loaded: str) -> dict:
    return {"incident_id": incident_id, "tenant_id": tenant, "title": "late incident", "severity": "high",
            "status": "new", "opened_at": opened, "sla_ack_minutes": 60, "sla_resolve_minutes": 1440,
            "_loaded_at": loaded}


def adhoc(template_key: str, tenant: str, date_from: str, date_to: str, requester: str):
    with pipeline_conn() as conn:
        return run_service.prepare(conn, run_service.RunSubmission(
            template_key=template_key, tenant_id=tenant, requester=requester, date_from=date_from, date_to=date_to))


def pipeline_conn():
    from orchestration.db import warehouse

    return warehouse.connection()


# ------------------------------------------------------------------ freshness


def test_stale_source_fails_a_fail_policy_template_without_retrying(built, conn):
    # The sample data ends 2026-07-01: a window to 5 July finds incidents a week old.
    template, request = adhoc("incident_summary", "acme", "2026-06-15", "2026-07-05", "analyst@acme.example")
    with pytest.raises(failures.RunFailed) as failed:
        engine.run_report(template, request)
    assert failed.value.failure_class == "source_unavailable"
    assert failed.value.diagnosis.startswith("stale source incidents: newest load 2026-06-30")
    record = records.get_run(conn, failed.value.run_id)
    assert record.attempt == 1 and record.artifact_location is None and record.snapshot_state == "none"
    assert record.source_watermarks["incidents"].startswith("2026-06-30")


def test_stale_source_publishes_degraded_everywhere_then_a_correction_supersedes_it(built, conn):
    template, request = adhoc("connector_health", "globex", "2026-06-22", "2026-07-05", "manager@globex.example")
    degraded = engine.run_report(template, request)
    record = records.get_run(conn, degraded.run_id)
    assert record.degraded and "connector_health_events" in record.degraded_reason
    files = files_of(degraded)

    rows = list(csv.reader(io.StringIO(files["csv"].read_text())))
    assert rows[0][-1] == "report_status"
    assert all(r[-1].startswith("DEGRADED: stale source connector_health_events") for r in rows[1:]) and len(rows) > 1
    report = json.loads(files["json"].read_text())["report"]
    assert report["degraded"] is True and "connector_health_events" in report["degraded_reason"]
    book = openpyxl.load_workbook(files["xlsx"], read_only=True)
    cells = [str(v) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for v in row if v]
    book.close()
    assert any("DEGRADED" in c or "Degraded" in c for c in cells) and any("connector_health_events" in c for c in cells)
    assert "DEGRADED" in "".join(p.extract_text() for p in PdfReader(files["pdf"]).pages)
    assert degraded.manifest["degraded"]["degraded"] is True

    # Not fresh yet: nothing to do. Then the feed catches up and the sensor asks for a correction.
    assert degraded.run_id not in [c.run.run_id for c in corrections.due_corrections(conn)]
    from orchestration.definitions import defs

    late_health = {"event_id": 990_000_001, "tenant_id": "globex", "connector_id": "globex-c01",
                   "observed_at": "2026-07-05 23:00+00", "status": "healthy", "latency_ms": 100,
                   "events_ingested": 10, "_loaded_at": "2026-07-05 23:10+00"}
    with raw_rows(conn, "connector_health_events", [late_health]):
        sensor = defs.resolve_sensor_def("corrections_sensor")
        with dg.instance_for_test() as instance:
            result = sensor.evaluate_tick(sensor_context(instance))
            requests = [r for r in result.run_requests if r.tags["nexus/supersedes"] == degraded.run_id]
            assert len(requests) == 1 and requests[0].run_key == f"correction:{degraded.run_id}"
            assert "fresh again" in requests[0].tags["nexus/reason"]
            job = defs.resolve_job_def("report_run")
            done = job.execute_in_process(run_config=requests[0].run_config, instance=instance, tags=requests[0].tags)
        assert done.success
    correction = records.run_for_dagster_run(conn, done.run_id, "connector_health")
    assert correction.trigger == "correction" and correction.supersedes_run_id == degraded.run_id
    assert not correction.degraded
    assert records.get_run(conn, degraded.run_id).superseded_by == correction.run_id
    chain = [link.run_id for link in records.chain(conn, correction.run_id)]
    assert chain == [degraded.run_id, correction.run_id]
    assert json.loads((degraded.location / "manifest.json").read_text())["run_id"] == degraded.run_id  # original kept


# ------------------------------------------------------------------ late-arriving data


def test_late_row_inside_a_published_window_asks_for_a_correction_and_outside_does_nothing(built, conn):
    template = templates.load("incident_summary")
    request = ReportRequest.for_period(template, "initech", PERIOD, requester="tenant_admin@initech.example")
    published = engine.run_report(template, request)

    def due_for_it():
        return [c for c in corrections.due_corrections(conn) if c.run.run_id == published.run_id]

    assert due_for_it() == []
    outside = incident(990_000_010, "initech", "2026-05-10 10:00+00", "2026-07-03 08:00+00")
    with raw_rows(conn, "incidents", [outside]):
        assert due_for_it() == []  # May is no published incident_summary window of initech here
        inside = incident(990_000_011, "initech", "2026-06-20 10:00+00", "2026-07-03 08:00+00")
        with raw_rows(conn, "incidents", [inside]):
            (due,) = due_for_it()
            assert due.reason == "late-arriving data: 1 late rows in incidents"
            config = corrections.correction_config(due.run, policy.SCHEDULER)
            assert (config["trigger"], config["supersedes"], config["period"]) == ("correction", published.run_id, PERIOD)
            correction = engine.run_report(
                template, ReportRequest.for_period(template, "initech", PERIOD, requester=policy.SCHEDULER,
                                                        trigger="correction"),
                RunOrigin(supersedes=published.run_id))
    assert records.get_run(conn, published.run_id).superseded_by == correction.run_id
    assert correction.manifest["supersedes_run_id"] == published.run_id
    assert due_for_it() == []  # superseded runs are not corrected again


def test_flag_policy_marks_the_run_and_audits_once(built, conn):
    template = templates.load("attack_coverage")
    assert template.backfill == "flag"
    request = ReportRequest.for_period(template, "acme", PERIOD, requester="manager@acme.example")
    published = engine.run_report(template, request)
    late = incident(990_000_020, "acme", "2026-06-11 10:00+00", "2026-07-04 08:00+00")
    late["attack_technique_id"] = "T1566"
    with raw_rows(conn, "incidents", [late]):
        assert published.run_id not in [c.run.run_id for c in corrections.due_corrections(conn)]
        corrections.due_corrections(conn)  # a second look flags nothing new
    record = records.get_run(conn, published.run_id)
    assert record.late_data_at is not None and record.superseded_by is None
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from control.audit_log where action = 'run.late_data_flagged' and target = %s",
                    (published.run_id,))
        assert cur.fetchone()[0] == 1


def test_gate_a_checks_declared_sources(built, conn):
    template = templates.load("incident_summary")
    bad = template.model_copy(update={"sources": (templates.SourceDef(name="incidentz", event_time="opened_at"),
                                                  templates.SourceDef(name="alerts", event_time="opened_at"))})
    problems = freshness.source_problems(conn, bad)
    assert problems == ["source incidentz: no such raw table", "source alerts: raw.alerts lacks opened_at"]
