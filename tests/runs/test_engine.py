"""The run engine: a run is refused before any query, deduplicated, cancelled, timed out or
broken on purpose, and in every case leaves nothing published and a classified record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from orchestration.access import policy
from orchestration.catalog import templates
from orchestration.dev import faults
from orchestration.runs import engine, failures, periods, publish, records, supervisor
from orchestration.runs.request import ReportRequest
from orchestration.runs.run_record import RunOrigin
from orchestration.settings import REPO_ROOT, get_settings
from tests.helpers.governance import approved_variant

from ..conftest import PERIOD, analyst

TEMPLATE = "incident_summary"


@pytest.fixture(scope="module")
def template():
    return templates.load(TEMPLATE, 1)


def request_for(template, tenant="acme", **kwargs):
    kwargs.setdefault("requester", analyst(tenant))
    return ReportRequest.for_period(template, tenant, PERIOD, **kwargs)


def leftovers(record) -> dict:
    """What of a run is visible on disk and in the record."""
    settings = get_settings()
    final = settings.artifacts_dir / record.tenant_id / record.template_key / record.period_key / record.run_id
    staging = final.parent / f".staging-{final.name}"
    return {"final": final.exists(), "staging": staging.exists(), "manifest": (final / "manifest.json").exists()}


def assert_nothing_published(conn, run_id, failure_class, state="failed"):
    record = records.get_run(conn, run_id)
    assert (record.state, record.failure_class) == (state, failure_class), record.diagnosis
    assert record.diagnosis and record.retry_guidance
    assert leftovers(record) == {"final": False, "staging": False, "manifest": False}
    assert record.artifact_location is None
    return record


# ------------------------------------------------------------------ the contract, refused up front


@pytest.mark.parametrize("change,message", [
    ({"formats": ("csv", "docx")}, "not offered"),
    ({"filters": {"colour": "red"}}, "has no filter colour"),
    ({"tenant_id": ""}, "needs a tenant"),
    ({"tenant_id": "acme,globex"}, "exactly one tenant"),
    ({"trigger": "whenever"}, "unknown trigger"),
])
def test_bad_requests_are_refused_before_any_query_and_audited(built, conn, template, change, message):
    request = request_for(template).__class__(**{**request_for(template).__dict__, **change})
    before = count_runs(conn)
    with pytest.raises(periods.RequestError, match=message):
        engine.run_report(template, request)
    assert count_runs(conn) == before  # nothing recorded as a run, nothing queried
    with conn, conn.cursor() as cur:
        cur.execute("select details->>'reason' from control.audit_log where action = 'run.refused' order by seq desc limit 1")
        assert message.split()[0] in cur.fetchone()[0]


def test_filters_are_type_checked_against_the_template(template):
    with_filters = template.model_copy(update={"filters": (
        templates.FilterDef(name="severity", type="enum", values=("critical", "high")),
        templates.FilterDef(name="min_count", type="integer"),
    )})
    ok = request_for(with_filters, filters={"severity": "high", "min_count": 3})
    assert ok.validate(with_filters) is ok
    with pytest.raises(periods.RequestError, match="expected one of critical, high"):
        request_for(with_filters, filters={"severity": "urgent"}).validate(with_filters)
    with pytest.raises(periods.RequestError, match="expected an integer"):
        request_for(with_filters, filters={"min_count": "3"}).validate(with_filters)


def count_runs(conn) -> int:
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from control.report_runs")
        return cur.fetchone()[0]


# ------------------------------------------------------------------ dedupe


def test_same_input_hash_while_active_returns_the_active_run(built, conn, template):
    request = request_for(template, tenant="globex")
    first, created = records.create_run(conn, request, RunOrigin())
    assert created
    second, created_again = records.create_run(conn, request, RunOrigin())
    assert (second, created_again) == (first, False)
    with pytest.raises(failures.AlreadyActive) as dup:
        engine.run_report(template, request)
    assert dup.value.run_id == first
    records.request_cancel(conn, first)  # a queued run ends at once
    assert records.get_run(conn, first).state == "cancelled"
    published = engine.run_report(template, request)  # no longer active: a new run
    assert published.run_id != first


# ------------------------------------------------------------------ cancel and timeout


def worker_command(tmp_path, tenant: str, requester: str, formats: tuple[str, ...] | None = None) -> list[str]:
    """A report run in its own Python process (a worker), printing how it ended if it ends."""
    script = tmp_path / f"run_{tenant}.py"
    script.write_text(
        "from orchestration.catalog import templates\n"
        "from orchestration.runs import engine, failures\n"
        "from orchestration.runs.request import ReportRequest\n"
        f"t = templates.load({TEMPLATE!r}, 1)\n"
        f"r = ReportRequest.for_period(t, {tenant!r}, {PERIOD!r}, requester={requester!r}"
        + (f", formats={formats!r})\n" if formats else ")\n")
        + "try:\n    engine.run_report(t, r)\nexcept failures.RunFailed as f:\n    print('ENDED', f.failure_class)\n"
    )
    return [sys.executable, str(script)]


def test_cancel_of_a_running_run_leaves_nothing(built, conn, template, tmp_path):
    """A run in another process, slowed down while rendering, cancelled from here."""
    env = {**os.environ, faults.ENV: "render:sleep=60"}
    proc = subprocess.Popen(worker_command(tmp_path, "initech", "analyst@initech.example", ("csv", "pdf")),
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True)
    run_id = wait_for_stage(conn, "initech", "render")
    outcome = records.request_cancel(conn, run_id)
    os.kill(outcome.worker_pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert "ENDED cancelled" in out
    record = assert_nothing_published(conn, run_id, "cancelled", state="cancelled")
    assert record.snapshot_state == "abandoned" and record.stage == "render"


def wait_for_stage(conn, tenant: str, stage: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with conn, conn.cursor() as cur:
            cur.execute("select run_id from control.report_runs where tenant_id = %s and state = 'running' and stage = %s",
                        (tenant, stage))
            row = cur.fetchone()
        if row:
            return row[0]
        time.sleep(0.2)
    raise AssertionError(f"no {tenant} run reached {stage}")


def test_timeout_ends_the_run_as_failed_timeout_with_nothing_published(built, conn, template, inject):
    quick = approved_variant(conn, template, 301, timeout_seconds=2)
    inject("render:sleep=30")
    started = time.monotonic()
    with pytest.raises(failures.RunFailed) as failed:
        engine.run_report(quick, request_for(quick))
    assert time.monotonic() - started < 20
    assert failed.value.failure_class == "timeout"
    assert_nothing_published(conn, failed.value.run_id, "timeout")


# ------------------------------------------------------------------ fault injection


def test_process_killed_during_render(built, conn, template, tmp_path):
    proc = subprocess.run(worker_command(tmp_path, "globex", "manager@globex.example"), cwd=REPO_ROOT,
                          env={**os.environ, faults.ENV: "render:kill"}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    with conn, conn.cursor() as cur:
        cur.execute("select run_id from control.report_runs where requester = 'manager@globex.example' "
                    "and state = 'running'")
        (run_id,) = cur.fetchone()
    record = records.get_run(conn, run_id)
    assert leftovers(record)["staging"]  # the dead worker left its staging folder behind...
    assert run_id in supervisor.reap(conn)  # ...which the reaper removes, ending the run
    record = assert_nothing_published(conn, run_id, "format_error")
    assert "died during render" in record.diagnosis and record.snapshot_state == "abandoned"


def test_connection_dropped_during_snapshot_is_classified_and_retried(built, conn, template, inject):
    inject("snapshot_query:drop_connection")
    published = engine.run_report(template, request_for(template, tenant="initech", requester="manager@initech.example"))
    retry = records.get_run(conn, published.run_id)
    assert retry.attempt == 2 and retry.state == "completed"
    record = assert_nothing_published(conn, retry.retry_of, "source_unavailable")
    assert "connection" in record.diagnosis and record.snapshot_state == "abandoned"
    assert record.retry_guidance.startswith("transient")


def test_artifact_store_failing_during_publish(built, conn, template, inject):
    inject("store:storage")
    with pytest.raises(failures.RunFailed) as failed:
        engine.run_report(template, request_for(template, tenant="globex", requester="tenant_admin@globex.example"),
                            retries=False)
    assert failed.value.failure_class == "storage_failure"
    assert "No space left on device" in failed.value.diagnosis
    assert_nothing_published(conn, failed.value.run_id, "storage_failure")


def test_gate_b_failure_is_permanent_and_not_retried(built, conn, template):
    broken = approved_variant(conn, template, 302, sections=tuple(
        s.model_copy(update={"max_rows": 1}) if s.name == "by_status" else s for s in template.sections))
    with pytest.raises(failures.RunFailed) as failed:
        engine.run_report(broken, request_for(broken))
    assert failed.value.failure_class == "validation_failed"
    record = assert_nothing_published(conn, failed.value.run_id, "validation_failed")
    assert record.attempt == 1 and record.snapshot_state == "abandoned"
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from control.report_runs where retry_of = %s", (record.run_id,))
        assert cur.fetchone()[0] == 0


def test_tenant_differing_from_the_schedules_is_a_security_event(built, conn, template):
    request = request_for(template, tenant="globex", requester=policy.SCHEDULER, trigger="schedule")
    with pytest.raises(periods.RequestError, match="differs from the schedule's tenant 'acme'"):
        engine.run_report(template, request, RunOrigin(expected_tenant="acme", schedule_id="rs-test"))
    with conn, conn.cursor() as cur:
        cur.execute("select kind, actor, tenant_id, details from control.security_events order by event_id desc limit 1")
        kind, actor, tenant, details = cur.fetchone()
        cur.execute("select count(*) from control.audit_log where action = 'security.tenant_mismatch'")
        audited = cur.fetchone()[0]
    assert (kind, actor, tenant) == ("tenant_mismatch", policy.SCHEDULER, "acme")
    assert details["requested_tenant"] == "globex" and details["schedule_id"] == "rs-test" and audited >= 1


def test_dagster_terminate_inside_a_step_ends_the_run_cancelled(built, conn, template, inject, monkeypatch):
    """The UI's terminate raises DagsterExecutionInterruptedError in the step: cancelled, cleaned up.
    A real terminate needs the daemon and a launched run worker; here the exception it raises is
    injected at the render step (the one stand-in in this file)."""
    from dagster._core.errors import DagsterExecutionInterruptedError

    def interrupted(*args, **kwargs):
        raise DagsterExecutionInterruptedError("terminated from the Dagster UI")

    monkeypatch.setattr(publish, "_render", interrupted)
    request = request_for(template, tenant="globex", requester="analyst@globex.example", formats=("json",))
    with pytest.raises(DagsterExecutionInterruptedError):  # propagates, so Dagster marks the run CANCELED
        engine.run_report(template, request)
    with conn, conn.cursor() as cur:
        cur.execute("select run_id from control.report_runs where input_hash = %s order by created_at desc limit 1",
                    (request.input_hash,))
        (run_id,) = cur.fetchone()
    assert_nothing_published(conn, run_id, "cancelled", state="cancelled")


def test_a_run_cancelled_in_dagster_before_it_started_ends_its_record(built, conn, template):
    from orchestration.defs.runs.sensors import end_orphans

    run_id, _ = records.create_run(conn, request_for(template, tenant="initech", requester="manager@initech.example"),
                                   RunOrigin(dagster_run_id="dagster-run-cancelled-in-queue"))
    assert end_orphans(conn, "dagster-run-cancelled-in-queue", "cancelled", "cancelled in Dagster (terminate)") == [run_id]
    record = assert_nothing_published(conn, run_id, "cancelled", state="cancelled")
    assert record.diagnosis == "cancelled in Dagster (terminate)"


def test_a_run_past_retention_expires_its_files_go_and_the_state_says_so(built, conn, template):
    import datetime as dt

    from orchestration.services import artifacts as artifact_service

    request = request_for(template, tenant="initech", requester="analyst@initech.example", formats=("csv",))
    published = engine.run_report(template, request)
    record = records.get_run(conn, published.run_id)
    day_before = record.published_at + dt.timedelta(days=template.retention_days) - dt.timedelta(seconds=1)
    assert artifact_service.expire(conn, now=day_before, run_ids=[published.run_id]) == []
    assert published.location.exists()
    expired = artifact_service.expire(conn, now=day_before + dt.timedelta(seconds=2), run_ids=[published.run_id])
    assert expired == [published.run_id]
    assert not published.location.exists() and not list(published.location.parent.glob(f"*{published.run_id}*"))
    assert records.get_run(conn, published.run_id).state == "expired"
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from control.audit_log where action = 'run.expired' and target = %s",
                    (published.run_id,))
        assert cur.fetchone()[0] == 1
