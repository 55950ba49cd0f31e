"""An export pipeline on a schedule, over real HTTP and the suite's webhook receiver: created with
`pipeline_id` on /reports/schedules (and `schedules create --pipeline`), each tick starts one batch
keyed by the tick, so evaluating the same tick again starts and delivers nothing more; Gate C
holds a confidential member back (audited) until a distribution approval of exactly the
pipeline's destination is recorded (`delivery approve --pipeline`), then it goes out once, as
links; a paused pipeline's tick is refused and audited. A batch interrupted while submitting its
members is finished by settle with the members it has."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestration.pipelines import store as pipeline_store
from orchestration.pipelines.models import MemberRun
from orchestration.runs import supervisor
from orchestration.schedules.timing import run_key
from orchestration.services import pipeline_runs
from orchestration.services import schedules as schedule_service
from tests.helpers.audit import audit_log, audit_rows
from tests.helpers.cli import invoke, one_line_error
from tests.helpers.schedules import retire_all

from .conftest import auth
from .test_definitions import APPROVER
from .test_pipelines import ANALYST, PIPES, _active_pipeline, _hook, _posts, _settled
from .test_schedules import CREATED, MANAGER, SCHEDULES, TICK, _definition, _no_dagster_runs


@pytest.fixture(autouse=True)
def only_this_tests_schedules(built, conn, monkeypatch):
    """evaluate() looks at every active schedule: retire the ones other tests left active. The
    receiver is plain http on loopback: the outbound checker's development switch."""
    monkeypatch.setenv("REPORTS_ALLOW_INSECURE_OUTBOUND", "1")
    monkeypatch.setenv("REPORTS_WEBHOOK_TIMEOUT", "5")
    retire_all(conn)
    yield
    retire_all(conn)


def _confidential(client, token_for, entity) -> str:
    return _definition(client, token_for, entity, aggregates=[
        {"function": "sum", "field": f"{entity['entity_name']}.incidents_resolved", "alias": "resolved"}])


def _tick(conn, at: dt.datetime) -> schedule_service.Evaluation:
    return schedule_service.evaluate(conn, at + dt.timedelta(seconds=20), _no_dagster_runs)


def test_a_pipeline_schedule_ticks_once_and_gate_c_holds_until_an_exact_approval(
        client, token_for, entity, receiver, conn, api_clock):
    api_clock.now = CREATED
    url = _hook(receiver, "scheduled")
    pipeline_id = _active_pipeline(client, token_for, [_confidential(client, token_for, entity)], url)
    manager = auth(token_for(MANAGER))
    both = client.post(SCHEDULES, json={"pipeline_id": pipeline_id, "report_definition_id": "rdef_0123456789abcdef",
                                        "schedule": "0 6 * * *"}, headers=manager)
    assert both.status_code == 422 and "exactly one" in both.text
    with_recipients = client.post(SCHEDULES, json={"pipeline_id": pipeline_id, "schedule": "0 6 * * *",
                                                   "recipients": ["email:x@acme.example"]}, headers=manager)
    assert with_recipients.status_code == 422 and "destination" in with_recipients.text
    made = client.post(SCHEDULES, json={"pipeline_id": pipeline_id, "schedule": "0 6 * * *"}, headers=manager)
    assert made.status_code == 201, made.text
    schedule = made.json()
    assert (schedule["pipeline_id"], schedule["report_definition_id"], schedule["format"], schedule["next_run_at"]) == (
        pipeline_id, None, "csv", "2026-07-01T06:00:00Z")

    # Tick 1: one batch, as the schedule's owner; the confidential member is refused by Gate C.
    first = _tick(conn, TICK)
    (batch_id,) = first.submitted.values()
    batch = _settled(client, manager, f"{PIPES}/{pipeline_id}/runs/{batch_id}")
    assert (batch["status"], batch["trigger"], batch["requested_by"]) == ("failed", "schedule", MANAGER), batch
    (member,) = batch["members"]
    assert member["state"] == "published" and member["delivery"] == "refused"
    assert "Gate C" in member["delivery_detail"]["reason"] and f"pipeline {pipeline_id}" in member["delivery_detail"]["reason"]
    refused = [r for r in audit_rows(conn, f"webhook:{url}") if r[1] == "delivery.refused"]
    assert refused and refused[-1][4]["pipeline_id"] == pipeline_id and refused[-1][4]["sensitivity"] == "confidential"
    assert _posts(receiver, "scheduled") == []
    with conn, conn.cursor() as cur:
        cur.execute("select outcome, pipeline_run_id from control.schedule_ticks where schedule_id = %s",
                    (schedule["schedule_id"],))
        assert cur.fetchall() == [("requested", batch_id)]

    # Approvals: the pipeline's owner may not approve its own distribution; only its exact destination is approvable.
    own = invoke("delivery", "approve", "--pipeline", pipeline_id, "--recipients", f"webhook:{url}",
                 "--channels", "webhook", "--as", ANALYST)
    assert own.exit_code == 1 and "approver must be someone else" in one_line_error(own.output)
    other = invoke("delivery", "approve", "--pipeline", pipeline_id, "--recipients", f"webhook:{url}/other",
                   "--channels", "webhook", "--as", APPROVER)
    assert other.exit_code == 1 and "approve exactly that destination" in one_line_error(other.output)
    approved = invoke("delivery", "approve", "--pipeline", pipeline_id, "--recipients", f"webhook:{url}",
                      "--channels", "webhook", "--as", APPROVER)
    assert approved.exit_code == 0 and f"for pipeline {pipeline_id}" in approved.output, approved.output

    # Tick 2 delivers it, once, as links; the same tick evaluated again starts and sends nothing.
    second = _tick(conn, TICK + dt.timedelta(days=1))
    (second_id,) = second.submitted.values()
    done = _settled(client, manager, f"{PIPES}/{pipeline_id}/runs/{second_id}")
    assert done["status"] == "completed" and done["members"][0]["delivery"] == "delivered", done
    again = _tick(conn, TICK + dt.timedelta(days=1))
    assert again.submitted == {} and again.recorded == []
    client.get(f"{PIPES}/{pipeline_id}/runs", headers=manager)  # a reader settles again: nothing more goes out
    (post,) = _posts(receiver, "scheduled")
    assert post["run_id"] == done["members"][0]["run_id"] and post["template"]["sensitivity"] == "confidential"
    assert [f["format"] for f in post["files"]] == ["csv"] and post["links"][0]["url"].startswith("http")

    # A paused pipeline: its next tick is refused (audited), nothing runs.
    paused = client.post(f"{PIPES}/{pipeline_id}/pause", json={"reason_code": "OTHER", "reason_text": "audit week"},
                         headers=auth(token_for(ANALYST)))
    assert paused.status_code == 200, paused.text
    third = _tick(conn, TICK + dt.timedelta(days=2))
    assert third.submitted == {} and [(r.outcome, "paused" in r.reason) for r in third.recorded] == [("refused", True)]
    tick_refusals = audit_log(conn, "outcome", "details", action="schedule.tick_refused",
                              target=f"schedule {schedule['schedule_id']}")
    assert tick_refusals[-1][0] == "denied" and tick_refusals[-1][1]["pipeline_id"] == pipeline_id


def test_schedules_create_pipeline_on_the_command_line(client, token_for, entity, receiver):
    pipeline_id = _active_pipeline(client, token_for, [_confidential(client, token_for, entity)],
                                   _hook(receiver, "cli"))
    made = invoke("schedules", "create", "--pipeline", pipeline_id, "--every", "PT6H", "--as", MANAGER,
                  "--reason", "six-hourly export")
    assert made.exit_code == 0 and f": {pipeline_id} for acme every PT6H, formats csv; active" in made.output, made.output
    mixed = invoke("schedules", "create", "--pipeline", pipeline_id, "--every", "PT6H", "--format", "xlsx",
                   "--as", MANAGER, "--reason", "x")
    assert mixed.exit_code == 2 and "pipeline's active version" in mixed.output


def test_a_batch_interrupted_while_submitting_is_finished_with_the_members_it_has(client, token_for, entity,
                                                                                 receiver, conn):
    first, second = (_definition(client, token_for, entity, report_name=f"Interrupted {n}") for n in (1, 2))
    pipeline_id = _active_pipeline(client, token_for, [first, second], _hook(receiver, "interrupted"))
    started = dt.datetime.now(dt.UTC) - pipeline_runs.SUBMIT_GRACE - dt.timedelta(minutes=1)
    with conn:  # what a process that died after its first member leaves: the batch, one member refused
        pipeline = pipeline_store.TABLE.get(conn, pipeline_id)
        batch_id = pipeline_store.insert_run(conn, pipeline, requester=ANALYST, trigger="manual", correlation_id="cut-1",
                                             idempotency_key=None, fingerprint="f", now=started)
        pipeline_store.insert_member(conn, batch_id, MemberRun(position=0, member=first, run_id=None, state="failed",
                                                               error="refused for the test"))
    fresh = pipeline_runs.settle(conn, batch_id, now=started + dt.timedelta(minutes=1))
    assert fresh.status == "running" and len(fresh.members) == 1  # within the grace: still being submitted
    ended = pipeline_runs.settle(conn, batch_id)
    assert ended.status == "failed" and [m.member for m in ended.failed] == [first, second]
    assert "interrupted while submitting" in ended.members[1].error and ended.members[1].run_id is None
    exports = audit_log(conn, "target", "outcome", action="pipeline.export", correlation_id="cut-1")
    assert exports == [(second, "failed")]
    assert audit_log(conn, "outcome", action="pipeline.run.settled", correlation_id="cut-1") == [("failed",)]


def test_a_pipeline_tick_whose_batch_never_started_is_submitted_again_once(client, token_for, entity, receiver, conn,
                                                                           api_clock):
    api_clock.now = CREATED
    pipeline_id = _active_pipeline(client, token_for, [_definition(client, token_for, entity)], _hook(receiver, "lost"))
    made = client.post(SCHEDULES, json={"pipeline_id": pipeline_id, "schedule": "0 6 * * *"},
                       headers=auth(token_for(MANAGER)))
    schedule_id = made.json()["schedule_id"]
    with conn, conn.cursor() as cur:  # what an evaluation that died right after recording the tick leaves
        cur.execute("""insert into control.schedule_ticks (schedule_id, tick_at, outcome, run_key, created_at)
                       values (%s, %s, 'requested', %s, now() - interval '2 minutes')""",
                    (schedule_id, TICK, run_key(schedule_id, TICK)))
    held: list[str] = []  # the member runs are admitted; no worker is needed to see the batch start
    try:
        result = schedule_service.evaluate(conn, TICK + dt.timedelta(seconds=20), _no_dagster_runs, launch=held.append)
        assert list(result.submitted) == [run_key(schedule_id, TICK)] and len(held) == 1
        again = schedule_service.evaluate(conn, TICK + dt.timedelta(seconds=50), _no_dagster_runs, launch=held.append)
        assert again.submitted == {} and len(held) == 1
        with conn, conn.cursor() as cur:
            cur.execute("select pipeline_run_id from control.schedule_ticks where schedule_id = %s", (schedule_id,))
            assert cur.fetchall() == [(result.submitted[run_key(schedule_id, TICK)],)]
    finally:
        for run_id in held:
            supervisor.end_unsuccessfully(conn, run_id, "cancelled", "test: never launched")
