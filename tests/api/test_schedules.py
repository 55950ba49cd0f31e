"""/reports/schedules over real HTTP: a definition's schedule ticks (driven by the evaluation the
Dagster sensor runs, with an injected clock), runs through the worker as an API run does, and is
delivered once through the real outbox to the suite's SMTP server; a confidential definition
without a distribution approval is refused by Gate C (audited); pause / resume / archive with
reasons; interval schedules; clear 422s; another tenant's schedule is 404."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time

import pytest

from orchestration.services import delivery as delivery_service
from orchestration.services import schedules as schedule_service
from tests.helpers.audit import audit_rows
from tests.helpers.cli import invoke
from tests.helpers.schedules import retire_all

from .conftest import auth
from .test_definitions import APPROVER, DEFS, _by_severity, _raw_opened

SCHEDULES = "/reports/schedules"
CREATED = dt.datetime(2026, 7, 1, 5, 0, tzinfo=dt.UTC)  # seeded data ends 2026-07-01: a tick then reports June
TICK = dt.datetime(2026, 7, 1, 6, 0, tzinfo=dt.UTC)
MANAGER = "manager@acme.example"


@pytest.fixture(autouse=True)
def only_this_tests_schedules(built, conn):
    retire_all(conn)
    yield
    retire_all(conn)


@pytest.fixture()
def smtp_env(smtp, monkeypatch):
    """The outbox's SMTP settings point at the suite's receiver (the worker process inherits them)."""
    for name, value in {"REPORTS_SMTP_HOST": "127.0.0.1", "REPORTS_SMTP_PORT": str(smtp[1]), "REPORTS_SMTP_TLS": "none",
                        "REPORTS_SMTP_FROM": "reports@nexus.example", "REPORTS_SMTP_TIMEOUT": "5"}.items():
        monkeypatch.setenv(name, value)
    return smtp[0]


def _definition(client, token_for, entity, **over) -> str:
    created = client.post(DEFS, json=_by_severity(entity, **over), headers=auth(token_for("analyst@acme.example")))
    assert created.status_code == 201, created.text
    definition_id = created.json()["report_definition_id"]
    assert client.post(f"{DEFS}/{definition_id}/activate", headers=auth(token_for(APPROVER))).status_code == 200
    return definition_id


def _schedule(client, token_for, definition_id: str, **over) -> dict:
    body = {"report_definition_id": definition_id, "schedule": "0 6 * * *", "timezone": "UTC", "format": "csv", **over}
    made = client.post(SCHEDULES, json=body, headers=auth(token_for(MANAGER)))
    assert made.status_code == 201, made.text
    return made.json()


def _no_dagster_runs(schedule_id: int) -> bool:
    return False  # the run records answer for definition runs; no Dagster instance is consulted here


def _sent_or_refused(conn, run_ids: list[str], timeout: float = 240) -> float:
    """Wait until every run ended and its deliveries were attempted; seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with conn, conn.cursor() as cur:
            cur.execute("select count(*) from control.report_runs where run_id = any(%s) and state in "
                        "('completed', 'failed')", (run_ids,))
            ended = cur.fetchone()[0]
            cur.execute("select count(*) from control.deliveries where run_id = any(%s) and status = 'sent'", (run_ids,))
            sent = cur.fetchone()[0]
        if ended == len(run_ids) and sent >= 1:
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"runs {run_ids} were not delivered within {timeout}s")


def _eventually(read, timeout: float = 60):
    """What `read` returns once it is not empty: the worker delivers (or refuses) just after it
    ends the run, so a refusal can follow the run's end by a moment."""
    deadline = time.monotonic() + timeout
    while not (found := read()) and time.monotonic() < deadline:
        time.sleep(0.25)
    return found


def test_a_definition_schedule_ticks_runs_and_delivers_once(client, token_for, entity, conn, api_clock, smtp_env):
    api_clock.now = CREATED
    delivery_service.allow_domain(conn, "acme", "acme.example", actor="tenant_admin@acme.example")
    internal = _definition(client, token_for, entity)
    confidential = _definition(client, token_for, entity, aggregates=[
        {"function": "sum", "field": f"{entity['entity_name']}.incidents_resolved", "alias": "resolved"}])
    shown = _schedule(client, token_for, internal, recipients=["email:sched-ops@acme.example"])
    assert (shown["status"], shown["next_run_at"], shown["report_definition_id"]) == (
        "active", "2026-07-01T06:00:00Z", internal)
    secret = _schedule(client, token_for, confidential, recipients=["email:sched-ciso@acme.example"])

    # the tick, through the same evaluation the sensor runs; the runs start as an API run's do
    tick_clock = time.monotonic()
    first = schedule_service.evaluate(conn, TICK + dt.timedelta(seconds=20), _no_dagster_runs)
    run_of = {int(key.split(":")[1]): run_id for key, run_id in first.submitted.items()}
    assert set(run_of) == {shown["schedule_id"], secret["schedule_id"]}, first
    waited = _sent_or_refused(conn, list(run_of.values()))
    print(f"\ntick -> delivered file: {time.monotonic() - tick_clock:.1f} s (waited {waited:.1f} s for the worker)")

    (mail,) = smtp_env.to("sched-ops@acme.example")
    (attachment,) = list(mail.iter_attachments())
    rows = list(csv.DictReader(io.StringIO(attachment.get_payload(decode=True).decode("utf-8-sig"))))
    assert {r["severity"]: int(r["opened"]) for r in rows} == _raw_opened(conn, "acme")
    with conn, conn.cursor() as cur:
        cur.execute("select requester, trigger, schedule_id, tick_at, window_start, window_end from control.report_runs "
                    "where run_id = %s", (run_of[shown["schedule_id"]],))
        requester, trigger, schedule_id, tick_at, start, end = cur.fetchone()
        cur.execute("select outcome, run_id from control.schedule_ticks where schedule_id = %s", (shown["schedule_id"],))
        ticks = cur.fetchall()
    assert (requester, trigger, schedule_id, tick_at) == (MANAGER, "schedule", str(shown["schedule_id"]), TICK)
    assert (start, end) == (dt.date(2026, 6, 1), dt.date(2026, 7, 1))
    assert ticks == [("requested", run_of[shown["schedule_id"]])]

    # Gate C: the confidential definition ran, but nothing went out without a distribution approval
    assert smtp_env.to("sched-ciso@acme.example") == []
    refusal = _eventually(lambda: [r for r in audit_rows(conn, "email:sched-ciso@acme.example")
                                   if r[1] == "delivery.refused"])
    assert refusal and "Gate C" in refusal[-1][4]["reason"] and refusal[-1][4]["sensitivity"] == "confidential"
    # an approval of exactly its recipients and channels lets it go out (as links, never the file)
    delivery_service.approve(conn, secret["schedule_id"], approver=APPROVER, recipients=["email:sched-ciso@acme.example"],
                             channels=["email"])
    approved = delivery_service.deliver_scheduled_run(conn, run_of[secret["schedule_id"]],
                                                      make_link=lambda *_: "https://links.test/one")
    assert [a["status"] for a in approved.attempts] == ["sent"]  # the link service is another system: faked here
    (ciso,) = smtp_env.to("sched-ciso@acme.example")
    assert list(ciso.iter_attachments()) == [] and "https://links.test/one" in ciso.get_body().get_content()

    # the same tick evaluated again (a sensor restart): nothing more runs or is delivered
    again = schedule_service.evaluate(conn, TICK + dt.timedelta(seconds=50), _no_dagster_runs)
    assert again.submitted == {} and again.recorded == []
    redo = delivery_service.deliver_scheduled_run(conn, run_of[shown["schedule_id"]])
    assert redo.enqueued == [] and len(smtp_env.to("sched-ops@acme.example")) == 1

    listed = client.get(SCHEDULES, params={"status": "active"}, headers=auth(token_for(MANAGER))).json()
    mine = next(s for s in listed["items"] if s["schedule_id"] == shown["schedule_id"])
    assert mine["last_tick_at"] == "2026-07-01T06:00:00Z" and mine["next_run_at"] == "2026-07-02T06:00:00Z"


def test_a_tick_revalidates_the_definition_and_fails_closed(client, token_for, entity, conn, api_clock):
    api_clock.now = CREATED
    definition_id = _definition(client, token_for, entity)
    made = _schedule(client, token_for, definition_id)
    deprecated = client.post(f"{DEFS}/{definition_id}/deprecate", json={"reason_code": "SUPERSEDED"},
                             headers=auth(token_for("analyst@acme.example")))
    assert deprecated.status_code == 200, deprecated.text
    launched: list[str] = []
    result = schedule_service.evaluate(conn, TICK + dt.timedelta(seconds=20), _no_dagster_runs, launch=launched.append)
    assert launched == [] and result.submitted == {}
    ((sid, _, outcome, reason),) = [(r.schedule_id, r.tick_at, r.outcome, r.reason) for r in result.recorded]
    assert (sid, outcome) == (made["schedule_id"], "refused") and "deprecated: scheduled runs are refused" in reason
    refused = [r for r in audit_rows(conn, f"schedule {sid}") if r[1] == "schedule.tick_refused"]
    assert refused[-1][2] == "denied" and refused[-1][4]["definition_id"] == definition_id


def test_a_tick_while_the_previous_definition_run_is_active_is_skipped(client, token_for, entity, conn, api_clock):
    from orchestration.runs import records

    api_clock.now = CREATED
    made = _schedule(client, token_for, _definition(client, token_for, entity), schedule="0 * * * *")
    held: list[str] = []  # admitted, never executed: the run stays queued
    first = schedule_service.evaluate(conn, TICK + dt.timedelta(seconds=20), _no_dagster_runs, launch=held.append)
    assert list(first.submitted.values()) == held and len(held) == 1
    try:
        later = schedule_service.evaluate(conn, TICK + dt.timedelta(hours=1, seconds=20), _no_dagster_runs,
                                          launch=held.append)
        assert [(r.outcome, r.reason) for r in later.recorded] == [
            ("skipped_overlap", "a run of this schedule is still active")] and len(held) == 1
    finally:
        records.finish_run(conn, held[0], "cancelled", failure_class="cancelled", diagnosis="test over")
    assert made["schedule_id"] == later.recorded[0].schedule_id


def test_pause_resume_archive_with_reasons(client, token_for, entity, api_clock):
    api_clock.now = CREATED
    made = _schedule(client, token_for, _definition(client, token_for, entity))
    one, manager = f"{SCHEDULES}/{made['schedule_id']}", auth(token_for(MANAGER))

    other = client.post(f"{one}/pause", json={"reason_code": "OTHER"}, headers=manager)
    assert other.status_code == 422 and "reason_text is required when reason_code is OTHER" in other.text
    paused = client.post(f"{one}/pause", json={"reason_code": "OTHER", "reason_text": "change freeze"}, headers=manager)
    assert paused.status_code == 200, paused.text
    assert (paused.json()["status"], paused.json()["next_run_at"], paused.json()["reason_code"],
            paused.json()["reason_text"]) == ("paused", None, "OTHER", "change freeze")
    assert client.post(f"{one}/pause", json={"reason_code": "SECURITY"}, headers=manager).status_code == 409

    api_clock.now = CREATED + dt.timedelta(hours=3)  # the 06:00 tick passed while paused: not caught up
    resumed = client.post(f"{one}/resume", headers=manager)
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    assert resumed.json()["next_run_at"] == "2026-07-02T06:00:00Z" and resumed.json()["reason_code"] is None

    archived = client.post(f"{one}/archive", json={"reason_code": "NO_LONGER_NEEDED"}, headers=manager)
    assert archived.status_code == 200
    body = archived.json()
    assert (body["status"], body["next_run_at"], body["reason_code"]) == ("archived", None, "NO_LONGER_NEEDED")
    assert body["archived_at"] == api_clock.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    final = client.post(f"{one}/resume", headers=manager)
    assert final.status_code == 409 and "only a schedule that is paused can be resumed" in final.json()["detail"]
    assert client.get(one, headers=manager).json()["status"] == "archived"
    assert client.get(SCHEDULES, params={"status": "paused"}, headers=manager).json()["items"] == []


def test_interval_schedules_clear_refusals_and_tenants(client, token_for, entity, api_clock):
    api_clock.now = CREATED
    definition_id = _definition(client, token_for, entity)
    every = _schedule(client, token_for, definition_id, schedule="PT6H", format="xlsx")
    assert (every["schedule"], every["format"], every["next_run_at"]) == ("PT6H", "xlsx", "2026-07-01T11:00:00Z")

    manager = auth(token_for(MANAGER))
    for body, detail in [({"schedule": "0 6 * *"}, "invalid cron expression '0 6 * *'"),
                         ({"schedule": "0 6 * * *", "timezone": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'"),
                         ({"schedule": "P1M"}, "invalid interval 'P1M'"),
                         ({"schedule": "0 6 * * *", "recipients": ["fax:123"]}, "recipient kind must be one of")]:
        refused = client.post(SCHEDULES, json={"report_definition_id": definition_id, **body}, headers=manager)
        assert refused.status_code == 422 and detail in refused.json()["detail"], refused.text
    wrong_format = client.post(SCHEDULES, json={"report_definition_id": definition_id, "schedule": "PT6H",
                                                "format": "pdf"}, headers=manager)
    assert wrong_format.status_code == 422 and wrong_format.json()["errors"][0]["field"] == "format"

    # who may schedule: an analyst may run it but not schedule it (403, audited); another tenant sees nothing
    analyst = client.post(SCHEDULES, json={"report_definition_id": definition_id, "schedule": "PT6H"},
                          headers=auth(token_for("analyst@acme.example")))
    assert analyst.status_code == 403
    globex = auth(token_for("manager@globex.example"))
    one = f"{SCHEDULES}/{every['schedule_id']}"
    for response in (client.get(one, headers=globex), client.post(f"{one}/resume", headers=globex),
                     client.post(f"{one}/pause", json={"reason_code": "SECURITY"}, headers=globex),
                     client.get(f"{SCHEDULES}/987654321", headers=globex),
                     client.post(SCHEDULES, json={"report_definition_id": definition_id, "schedule": "PT6H"},
                                 headers=globex)):
        assert response.status_code == 404, response.text
    assert every["schedule_id"] not in [s["schedule_id"] for s in client.get(SCHEDULES, headers=globex).json()["items"]]

    # paginated like the definitions list
    _schedule(client, token_for, definition_id, schedule="P1D")
    page = client.get(SCHEDULES, params={"limit": 1}, headers=manager)
    assert len(page.json()["items"]) == 1 and page.json()["next"] and 'rel="next"' in page.headers["link"]
    rest = client.get(SCHEDULES, params={"limit": 1, "cursor": page.json()["next"]}, headers=manager).json()
    assert rest["items"][0]["schedule_id"] > page.json()["items"][0]["schedule_id"]


def test_the_cli_schedules_a_definition_through_the_same_service(client, token_for, entity, conn):
    definition_id = _definition(client, token_for, entity)
    made = invoke("schedules", "create", "--definition", definition_id, "--every", "P1D", "--format", "xlsx",
                  "--as", MANAGER, "--reason", "daily ops file")
    assert made.exit_code == 0, made.output
    assert f"{definition_id} for acme every P1D, formats xlsx; active, next run" in made.output
    listed = invoke("schedules", "list", "--tenant", "acme")
    assert definition_id in listed.output and "P1D" in listed.output
    refused = invoke("schedules", "create", "--definition", definition_id, "--cron", "0 6 * *", "--as", MANAGER,
                     "--reason", "x")
    assert refused.exit_code != 0 and "invalid cron expression" in refused.output and "Traceback" not in refused.output
