"""End to end: a scheduled run of a restricted template, approved for distribution, reaches an
inbox (a real SMTP server) as links; a link downloads the redacted variant from the real link
service once its principal is authorized, and stops working when revoked."""

from __future__ import annotations

import csv
import datetime as dt
import http.client
import io
import re
import threading
import time
import urllib.parse

import dagster as dg
import pytest

from orchestration.access import policy as access
from orchestration.api import link_routes as web
from orchestration.api.serving import free_port
from orchestration.delivery import outbox
from orchestration.links import service as links
from orchestration.runs import records
from orchestration.schedules import store as schedule_store
from orchestration.services import delivery as delivery_service
from tests.helpers import principals
from tests.helpers.dagster import sensor_context
from tests.helpers.schedules import retire_all

TEMPLATE = "compliance_evidence_summary"  # restricted; its policy makes an external variant
AUDITOR = "auditor@partner.example"


@pytest.fixture(scope="module")
def link_service():
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(web.create_app(), host="127.0.0.1", port=port, access_log=False,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "link service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def get(url: str) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", parts.path)
    response = conn.getresponse()
    return response.status, response.read()


def test_restricted_report_reaches_the_inbox_as_links_to_the_redacted_variant(built, conn, tenant_ids, smtp,
                                                                              link_service, monkeypatch):
    from orchestration.definitions import defs
    from orchestration.defs.schedules import sensors as schedule_sensors

    handler, port = smtp
    for name, value in {"REPORTS_SMTP_HOST": "127.0.0.1", "REPORTS_SMTP_PORT": str(port), "REPORTS_SMTP_TLS": "none",
                        "REPORTS_LINK_BASE_URL": link_service}.items():
        monkeypatch.setenv(name, value)
    # An outside auditor: may receive (executive) acme's reports, nothing else; domain allow-listed.
    principals.upsert_principal(conn, AUDITOR, display_name="Partner auditor", roles=["executive"], tenants=["acme"],
                            actor="tenant_admin@acme.example")
    delivery_service.allow_domain(conn, "acme", "partner.example", actor="tenant_admin@acme.example")
    recipient = f"email:{AUDITOR};external;principal={AUDITOR}"
    retire_all(conn)
    with conn:
        schedule_id = schedule_store.create(
            conn, TEMPLATE, tenant_id="acme", cron="0 6 1 * *", timezone="UTC", actor="manager@acme.example",
            reason="monthly evidence for the partner audit", recipients=[recipient],
            now=dt.datetime(2026, 6, 30, tzinfo=dt.UTC))
    delivery_service.approve(conn, schedule_id, approver=access.APPROVERS[0], recipients=[recipient], channels=["email"])

    # The tick at 1 July 06:00 runs the schedule's job for June, through Dagster.
    monkeypatch.setattr(schedule_sensors, "_now", lambda: dt.datetime(2026, 7, 1, 6, 0, 20, tzinfo=dt.UTC))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", tenant_ids)
        requests = defs.resolve_sensor_def("runtime_schedules_sensor")(sensor_context(instance)).run_requests
        (request,) = [r for r in requests if r.tags["nexus/schedule_id"] == str(schedule_id)]
        result = defs.resolve_job_def(request.job_name).execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags)
    assert result.success
    record = records.run_for_dagster_run(conn, result.run_id, TEMPLATE)
    assert record.state == "completed" and record.period_key == "2026-06"

    (message,) = [m for m in handler.messages if m["To"] == AUDITOR]
    assert not list(message.iter_attachments())  # restricted: links, never attachments
    body = message.get_body(("plain",)).get_content()
    urls = re.findall(rf"{re.escape(link_service)}/links/[\w-]+", body)
    assert len(urls) == len(record.formats)
    link_lines = [text for text in body.splitlines() if "/links/" in text]
    csv_url = next(u for u, line in zip(urls, link_lines, strict=True) if ".csv" in line or "csv" in line)

    status, data = get(csv_url)
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert rows and {r["owner_name"] for r in rows} <= {"[redacted]", ""}  # the external variant
    assert all(len(r["control_title"]) <= 41 for r in rows)

    with conn:
        links.revoke(conn, actor="tenant_admin@acme.example", reason="audit closed", run_id=record.run_id)
    assert get(csv_url)[0] == 403
    with conn, conn.cursor() as cur:
        cur.execute("select outcome from control.access_events where run_id = %s order by event_id", (record.run_id,))
        assert [r[0] for r in cur.fetchall()][-2:] == ["granted", "denied"]
    assert outbox.channel_counts(conn, record.run_id)["email"]["sent"] == 1
