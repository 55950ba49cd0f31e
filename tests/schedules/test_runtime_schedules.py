"""Runtime schedules: create refusals, lifecycle, one run per tick, overlap, catch-up, DST, tick-time tenant checks."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import dagster as dg
import pytest

from orchestration.access import policy as access
from orchestration.access import tenants
from orchestration.catalog import templates
from orchestration.schedules import store, timing
from orchestration.services import schedules as schedule_service
from orchestration.services import templates as template_service
from tests.helpers import principals
from tests.helpers.audit import audit_rows
from tests.helpers.cli import invoke
from tests.helpers.dagster import sensor_context
from tests.helpers.schedules import retire_all

UTC = dt.UTC
T0 = dt.datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
TEMPLATE = "incident_summary"


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def no_runs(schedule_id: int) -> bool:
    return False


def busy(schedule_id: int) -> bool:
    return True


def manager(tenant: str) -> str:
    return f"manager@{tenant}.example"


@pytest.fixture(autouse=True)
def only_this_tests_schedules(built, conn):
    retire_all(conn)
    yield
    retire_all(conn)


def make(conn, tenant="acme", *, cron="0 6 * * *", timezone="UTC", actor=None, now=T0, **kwargs) -> int:
    with conn:  # the test is the caller that owns the transaction
        return store.create(conn, TEMPLATE, tenant_id=tenant, cron=cron, timezone=timezone,
                            actor=actor or manager(tenant), reason="weekly ops review", now=now, **kwargs)


def outcomes(conn, schedule_id):
    rows = store.ticks(conn, schedule_id)
    conn.rollback()
    return [(r["tick_at"], r["outcome"]) for r in rows]


# ------------------------------------------------------------------ create


@pytest.mark.parametrize("changes,message", [
    ({"template": "no_such_report"}, "unknown template no_such_report"),
    ({"version": 99}, "v99 has not been submitted"),
    ({"formats": ["csv", "docx"]}, "format docx not offered by incident_summary v1"),
    ({"cron": "0 6 * *"}, "invalid cron expression '0 6 * *'"),
    ({"cron": "61 6 * * *"}, "invalid cron expression"),
    ({"cron": "0 0 6 * * *"}, "expected 5 fields"),
    ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'"),
    ({"timezone": "CEST+2"}, "unknown time zone"),
    ({"tenant": "umbrella"}, "tenant 'umbrella' does not exist"),
    ({"catch_up": "all"}, "catch-up policy must be one of skip, latest"),
    ({"reason": " "}, "needs a reason"),
])
def test_create_refuses_with_a_clear_reason(conn, changes, message):
    args = {"template": TEMPLATE, "tenant": "acme", "cron": "0 6 * * 1", "timezone": "Europe/Berlin",
            "reason": "ops review", **changes}
    with pytest.raises(store.ScheduleError, match=re.escape(message)) as err, conn:
        store.create(conn, args.pop("template"), tenant_id=args.pop("tenant"), actor=manager("acme"), **args)
    assert "\n" not in str(err.value)


def test_create_refuses_an_unapproved_version(conn):
    draft = templates.load(TEMPLATE, 1).model_copy(update={"version": 410, "title": "Scheduled draft"})
    template_service.submit_template(conn, draft, actor=access.PLATFORM_OWNER)
    with pytest.raises(store.ScheduleError, match="incident_summary v410 is draft: only an approved version can be scheduled"):
        make(conn, version=410)


@pytest.mark.parametrize("actor,why", [
    ("analyst@acme.example", "none of the roles that may schedule"),
    ("manager@globex.example", "not a member of tenant acme"),
    ("nobody@acme.example", "unknown principal"),
])
def test_create_refuses_and_audits_an_actor_who_may_not_schedule_for_the_tenant(conn, actor, why):
    with pytest.raises(access.AccessDenied, match=why):
        make(conn, actor=actor)
    rows = audit_rows(conn, f"schedule of {TEMPLATE} for acme")
    assert rows[-1][:4] == (actor, "schedule.denied", "denied", "acme") and why in rows[-1][4]["reason"]
    assert store.list_schedules(conn, tenant_id="acme", states=["active"]) == []


def test_create_stores_the_schedule_and_audits_it(conn):
    sid = make(conn, tenant="globex", cron="0  6 * * 1", timezone="Europe/Berlin", formats=["csv", "pdf"],
               recipients=["soc-leads@globex.example"], actor="tenant_admin@globex.example")
    s = store.get(conn, sid)
    assert (s["template_key"], s["template_version"], s["cron"], s["state"], s["catch_up"], s["allow_overlap"]) == (
        TEMPLATE, 1, "0 6 * * 1", "active", "skip", False)
    assert s["formats"] == ["csv", "pdf"] and s["recipients"] == ["soc-leads@globex.example"]
    actor, action, outcome, tenant, details = audit_rows(conn, f"schedule {sid}")[0]
    assert (actor, action, outcome, tenant) == ("tenant_admin@globex.example", "schedule.create", "succeeded", "globex")
    assert details["reason"] == "weekly ops review" and details["timezone"] == "Europe/Berlin"


# ------------------------------------------------------------------ lifecycle


def test_pause_resume_archive_are_audited_and_an_archived_schedule_never_ticks(conn):
    sid = make(conn, cron="0 6 * * *")
    with conn:
        store.pause(conn, sid, actor=manager("acme"), reason="tenant migration this week")
    assert schedule_service.evaluate(conn, at(2026, 7, 1, 6, 0, 30), no_runs).requests == []  # paused: nothing
    with conn:
        store.resume(conn, sid, actor="tenant_admin@acme.example", reason="migration done", now=at(2026, 7, 3, 12))
    # ticks of the paused stretch (2 and 3 July) are not caught up; 4 July runs
    result = schedule_service.evaluate(conn, at(2026, 7, 4, 6, 0, 30), no_runs)
    assert [r.tick_at for r in result.requests] == [at(2026, 7, 4, 6)]
    with conn:
        store.archive(conn, sid, actor=manager("acme"), reason="replaced by the weekly one")
    assert schedule_service.evaluate(conn, at(2026, 7, 5, 6, 0, 30), no_runs).requests == []
    assert outcomes(conn, sid) == [(at(2026, 7, 4, 6), "requested")]
    with pytest.raises(store.ScheduleError, match=f"schedule {sid} is archived: only a schedule that is paused can be resumed"):
        store.resume(conn, sid, actor=manager("acme"), reason="oops")
    with pytest.raises(store.ScheduleError, match="needs a reason"), conn:
        store.pause(conn, sid, actor=manager("acme"), reason="")
    changes = [(a, act, d.get("reason"), d.get("to")) for a, act, _, _, d in audit_rows(conn, f"schedule {sid}")]
    assert changes == [
        (manager("acme"), "schedule.create", "weekly ops review", None),
        (manager("acme"), "schedule.pause", "tenant migration this week", "paused"),
        ("tenant_admin@acme.example", "schedule.resume", "migration done", "active"),
        (manager("acme"), "schedule.archive", "replaced by the weekly one", "archived"),
    ]


def test_only_a_scheduler_of_the_tenant_may_pause(conn):
    sid = make(conn)
    with pytest.raises(access.AccessDenied, match="not a member of tenant acme"), conn:
        store.pause(conn, sid, actor=manager("globex"), reason="not mine")
    assert store.get(conn, sid)["state"] == "active"
    assert audit_rows(conn, f"schedule {sid}")[-1][1:3] == ("schedule.denied", "denied")


# ------------------------------------------------------------------ ticks


def test_one_tick_is_one_run_request_however_often_it_is_evaluated(conn):
    sid = make(conn, cron="0 6 * * *", formats=["pdf"])
    now = at(2026, 7, 1, 6, 0, 30)
    first = schedule_service.evaluate(conn, now, no_runs)
    assert len(first.requests) == 1
    request = first.requests[0]
    assert request.run_key == f"rs:{sid}:2026-07-01T06:00:00Z"
    assert (request.template_key, request.tenant_id, request.period_key) == (TEMPLATE, "acme", "2026-06-01")
    assert request.tags == {"nexus/trigger": "schedule", "nexus/requester": access.SCHEDULER,
                            "nexus/schedule_id": str(sid), "nexus/tick_at": "2026-07-01T06:00:00Z", "nexus/formats": "pdf"}
    assert schedule_service.evaluate(conn, now, no_runs).requests == []  # same instant again: nothing new
    assert schedule_service.evaluate(conn, now + dt.timedelta(seconds=30), no_runs).requests == []
    assert outcomes(conn, sid) == [(at(2026, 7, 1, 6), "requested")]
    assert timing.run_key(sid, at(2026, 7, 1, 6)) == request.run_key  # stable across evaluations and restarts


def test_a_tick_while_the_previous_run_is_active_is_skipped_unless_overlap_is_allowed(conn):
    strict = make(conn, cron="0 6 * * *")
    relaxed = make(conn, "globex", cron="0 6 * * *", allow_overlap=True)
    result = schedule_service.evaluate(conn, at(2026, 7, 1, 6, 1), busy)
    assert [r.schedule_id for r in result.requests] == [relaxed]
    assert outcomes(conn, strict) == [(at(2026, 7, 1, 6), "skipped_overlap")]
    assert store.ticks(conn, strict)[0]["reason"] == "a run of this schedule is still active"
    conn.rollback()
    assert outcomes(conn, relaxed) == [(at(2026, 7, 1, 6), "requested")]
    # the next day the previous run is done: the strict schedule runs again
    assert [r.schedule_id for r in schedule_service.evaluate(conn, at(2026, 7, 2, 6, 1), no_runs).requests] == [strict, relaxed]


@pytest.mark.parametrize("policy,now,requested", [
    ("skip", at(2026, 7, 1, 5, 30), []),                          # sensor was off for every tick
    ("latest", at(2026, 7, 1, 5, 30), [at(2026, 7, 1, 5)]),       # only the newest missed tick runs
    ("skip", at(2026, 7, 1, 5, 0, 40), [at(2026, 7, 1, 5)]),      # 05:00 is on time, 01-04 were missed
    ("latest", at(2026, 7, 1, 5, 0, 40), [at(2026, 7, 1, 5)]),    # an on-time tick supersedes the missed ones
])
def test_catch_up_policy(conn, policy, now, requested):
    sid = make(conn, cron="0 * * * *", catch_up=policy)
    result = schedule_service.evaluate(conn, now, no_runs)
    assert [r.tick_at for r in result.requests] == requested
    expected = [(at(2026, 7, 1, h), "requested" if at(2026, 7, 1, h) in requested else "skipped_catch_up")
                for h in range(1, 6)]
    assert outcomes(conn, sid) == expected


# ------------------------------------------------------------------ daylight saving


@pytest.mark.parametrize("cron,tz,start,end,expected", [
    # Europe/Berlin springs forward 2026-03-29 02:00 -> 03:00: 02:30 does not exist that day and
    # runs once, when the clock jumps (03:30 CEST = 01:30 UTC).
    ("30 2 * * *", "Europe/Berlin", at(2026, 3, 28), at(2026, 3, 31),
     [at(2026, 3, 28, 1, 30), at(2026, 3, 29, 1, 30), at(2026, 3, 30, 0, 30)]),
    # Berlin falls back 2026-10-25 03:00 -> 02:00: 02:30 happens twice and runs once, the first time.
    ("30 2 * * *", "Europe/Berlin", at(2026, 10, 24), at(2026, 10, 27),
     [at(2026, 10, 24, 0, 30), at(2026, 10, 25, 0, 30), at(2026, 10, 26, 1, 30)]),
    # New York: 06:00 local is 11:00 UTC in winter, 10:00 UTC in summer.
    ("0 6 * * *", "America/New_York", at(2026, 3, 7), at(2026, 3, 10),
     [at(2026, 3, 7, 11), at(2026, 3, 8, 10), at(2026, 3, 9, 10)]),
    ("0 6 * * *", "America/New_York", at(2026, 10, 31), at(2026, 11, 3),
     [at(2026, 10, 31, 10), at(2026, 11, 1, 11), at(2026, 11, 2, 11)]),
    # 2026-03-08 02:30 does not exist in New York (runs when the clock jumps: 03:30 EDT = 07:30 UTC);
    # 2026-11-01 01:30 happens twice (runs once, at 01:30 EDT = 05:30 UTC).
    ("30 2 * * *", "America/New_York", at(2026, 3, 7, 12), at(2026, 3, 9, 12),
     [at(2026, 3, 8, 7, 30), at(2026, 3, 9, 6, 30)]),
    ("30 1 * * *", "America/New_York", at(2026, 10, 31, 12), at(2026, 11, 2, 12),
     [at(2026, 11, 1, 5, 30), at(2026, 11, 2, 6, 30)]),
])
def test_daylight_saving_days_fire_once_at_the_local_time(cron, tz, start, end, expected):
    assert timing.due_ticks(cron, tz, start, end) == expected


def test_across_the_spring_forward_night_the_sensor_requests_one_run(conn):
    """Evaluated every 20 minutes through the night the 02:30 Berlin time does not exist."""
    sid = make(conn, cron="30 2 * * *", timezone="Europe/Berlin", now=at(2026, 3, 28, 20))
    now, requested = at(2026, 3, 28, 20), []
    while now <= at(2026, 3, 30, 3):
        requested += [r.tick_at for r in schedule_service.evaluate(conn, now, no_runs, on_time=dt.timedelta(minutes=25)).requests]
        now += dt.timedelta(minutes=20)
    assert requested == [at(2026, 3, 29, 1, 30), at(2026, 3, 30, 0, 30)]
    assert [o for _, o in outcomes(conn, sid)] == ["requested", "requested"]


# ------------------------------------------------------------------ tenant context at every tick


def test_tick_is_refused_and_recorded_when_the_owner_was_deactivated(conn):
    owner = "schedule-owner@acme.example"
    principals.upsert_principal(conn, owner, roles=["manager"], tenants=["acme"], actor="tenant_admin@acme.example")
    sid = make(conn, actor=owner)
    principals.deactivate(conn, owner, actor="tenant_admin@acme.example")
    result = schedule_service.evaluate(conn, at(2026, 7, 1, 6, 0, 30), no_runs)
    assert result.requests == []
    assert outcomes(conn, sid) == [(at(2026, 7, 1, 6), "refused")]
    assert "deactivated" in store.ticks(conn, sid)[0]["reason"]
    conn.rollback()
    actor, action, outcome, tenant, details = audit_rows(conn, f"schedule {sid}")[-1]
    assert (actor, action, outcome, tenant) == (access.SCHEDULER, "schedule.tick_refused", "denied", "acme")
    assert details["tick_at"] == "2026-07-01T06:00:00Z"


def test_tick_is_refused_when_the_owner_lost_the_role_or_the_tenant_is_gone(conn, monkeypatch):
    owner = "schedule-owner2@acme.example"
    principals.upsert_principal(conn, owner, roles=["manager"], tenants=["acme"], actor="tenant_admin@acme.example")
    sid = make(conn, actor=owner)
    principals.upsert_principal(conn, owner, roles=["analyst"], tenants=["acme"], actor="tenant_admin@acme.example")
    assert schedule_service.evaluate(conn, at(2026, 7, 1, 6, 0, 30), no_runs).requests == []
    assert "none of the roles that may schedule" in store.ticks(conn, sid)[-1]["reason"]
    principals.upsert_principal(conn, owner, roles=["manager"], tenants=["acme"], actor="tenant_admin@acme.example")
    monkeypatch.setattr(tenants, "list_tenant_ids", lambda conn: ["globex", "initech"])
    assert schedule_service.evaluate(conn, at(2026, 7, 2, 6, 0, 30), no_runs).requests == []
    assert store.ticks(conn, sid)[-1]["reason"] == "tenant acme no longer exists"
    conn.rollback()
    assert [o for _, o in outcomes(conn, sid)] == ["refused", "refused"]


# ------------------------------------------------------------------ the Dagster sensor


@pytest.fixture()
def sensor_at(monkeypatch):
    from orchestration.defs.schedules import sensors

    def set_clock(when):
        monkeypatch.setattr(sensors, "_now", lambda: when)

    return set_clock


def test_sensor_requests_the_templates_partitioned_job_once_per_tick(conn, tenant_ids, sensor_at):
    from dagster._core.test_utils import create_run_for_test

    from orchestration.definitions import defs

    sensor = defs.resolve_sensor_def("runtime_schedules_sensor")
    sid = make(conn, "initech", cron="0 6 * * 1", timezone="Europe/Berlin", formats=["csv", "pdf"])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", tenant_ids)
        sensor_at(at(2026, 7, 6, 4, 0, 20))  # Monday 06:00 CEST
        result = sensor(sensor_context(instance))
        assert len(result.run_requests) == 1
        request = result.run_requests[0]
        assert request.job_name == f"{TEMPLATE}_job"
        assert request.partition_key == dg.MultiPartitionKey({"tenant": "initech", "period": "2026-06-01"})
        assert request.run_key == f"rs:{sid}:2026-07-06T04:00:00Z"
        assert request.tags == {"nexus/trigger": "schedule", "nexus/requester": access.SCHEDULER,
                                "nexus/schedule_id": str(sid), "nexus/tick_at": "2026-07-06T04:00:00Z",
                                "nexus/formats": "csv,pdf"}

        # evaluated again: the same tick is not a second run (at most the same run key again,
        # which Dagster launches once)
        sensor_at(at(2026, 7, 6, 4, 0, 50))
        again = sensor(sensor_context(instance))
        assert {r.run_key for r in getattr(again, "run_requests", None) or []} <= {request.run_key}

        # a week later the previous run is still going: the tick is skipped, not stacked
        create_run_for_test(instance, job_name=f"{TEMPLATE}_job", status=dg.DagsterRunStatus.STARTED,
                            tags={"nexus/schedule_id": str(sid)})
        sensor_at(at(2026, 7, 13, 4, 0, 20))
        later = sensor(sensor_context(instance))
        assert {r.run_key for r in getattr(later, "run_requests", None) or []} <= {request.run_key}
    assert outcomes(conn, sid) == [(at(2026, 7, 6, 4), "requested"), (at(2026, 7, 13, 4), "skipped_overlap")]


# ------------------------------------------------------------------ the command line


def test_schedules_from_the_command_line(conn):
    def cli(*args):
        return invoke("schedules", *args)

    base = ["create", TEMPLATE, "--tenant", "acme", "--cron", "0 6 * * 1", "--as", manager("acme"), "--reason", "Monday review"]
    bad_zone = cli(*base, "--timezone", "Europe/Berlinn")
    assert bad_zone.exit_code == 1 and "Traceback" not in bad_zone.output
    assert bad_zone.output.strip() == ("Error: unknown time zone 'Europe/Berlinn': "
                                       "expected an IANA name such as Europe/Berlin or UTC")
    denied = cli(*base[:-4], "--timezone", "Europe/Berlin", "--as", "viewer@acme.example", "--reason", "x")
    assert denied.exit_code == 1 and "may not schedule" in denied.output and len(denied.output.strip().splitlines()) == 1

    created = cli(*base, "--timezone", "Europe/Berlin", "--format", "csv,pdf", "--recipient", "soc@acme.example",
                  "--catch-up", "latest")
    assert created.exit_code == 0, created.output
    sid = int(created.output.split()[1].rstrip(":"))
    assert f"schedule {sid}: {TEMPLATE} v1 for acme at '0 6 * * 1' Europe/Berlin, formats csv,pdf; active" in created.output

    listed = cli("list", "--tenant", "acme")
    assert listed.exit_code == 0
    assert any(line.split()[:1] == [str(sid)] and "latest" in line for line in listed.output.splitlines())

    paused = cli("pause", str(sid), "--as", manager("acme"), "--reason", "holiday")
    assert paused.exit_code == 0 and f"schedule {sid} paused by {manager('acme')}: holiday" in paused.output
    again = cli("pause", str(sid), "--as", manager("acme"), "--reason", "holiday")
    assert again.exit_code == 1 and f"schedule {sid} is paused: only a schedule that is active can be paused" in again.output
    assert cli("archive", str(sid), "--as", manager("acme"), "--reason", "done").exit_code == 0
    assert cli("resume", "999999", "--as", manager("acme"), "--reason", "x").output.strip() == "Error: no schedule 999999"


# ------------------------------------------------------------------ the tick's run, end to end


def test_a_ticks_run_renders_the_schedules_formats_and_records_its_lag(conn, tenant_ids, sensor_at):
    from orchestration.definitions import defs
    from orchestration.runs import records

    sid = make(conn, "globex", cron="0 6 * * 1", timezone="Europe/Berlin", formats=["csv", "pdf"])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", tenant_ids)
        sensor_at(at(2026, 7, 6, 4, 0, 20))
        (request,) = defs.resolve_sensor_def("runtime_schedules_sensor")(sensor_context(instance)).run_requests
        result = defs.resolve_job_def(request.job_name).execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags, raise_on_error=False)
        assert result.success
        # The same tags on another tenant's partition: the schedule vouches for globex only.
        forged = defs.resolve_job_def(request.job_name).execute_in_process(
            instance=instance, partition_key=dg.MultiPartitionKey({"tenant": "acme", "period": "2026-06-01"}),
            tags=request.tags, raise_on_error=False)
        assert not forged.success
    record = records.run_for_dagster_run(conn, result.run_id, TEMPLATE)
    assert record.state == "completed" and record.schedule_id == str(sid)
    assert record.tick_at == at(2026, 7, 6, 4) and record.started_at > record.tick_at
    assert sorted(p.suffix for p in Path(record.artifact_location).iterdir()) == [".csv", ".json", ".json", ".pdf"]
    shown = invoke("runs", "show", record.run_id)
    assert "schedule lag  tick to start" in shown.stdout and "start to published" in shown.stdout
    with conn, conn.cursor() as cur:
        cur.execute("select details from control.security_events where kind = 'tenant_mismatch' order by event_id desc limit 1")
        (details,) = cur.fetchone()
    assert details["requested_tenant"] == "acme" and details["expected_tenant"] == "globex"
