"""Template lifecycle, Gate A, the access matrix and the audit chain, each tried against a break."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
import yaml

from orchestration.access import audit, policy
from orchestration.catalog import templates as catalog
from orchestration.defs.resources import RESOURCES
from orchestration.governance import lifecycle as governance
from orchestration.runs import engine, failures, records
from orchestration.runs.request import ReportRequest
from orchestration.services import templates as template_service
from tests.helpers import principals

from ..conftest import PERIOD, analyst

OWNER, APPROVER, APPROVER2 = policy.PLATFORM_OWNER, policy.APPROVERS[0], policy.APPROVERS[1]


@pytest.fixture(scope="module")
def template(built):
    return catalog.load("incident_summary", 1)


def variant(template, version: int, **changes):
    return template.model_copy(update={"version": version, **changes})


def with_section_sql(template, section: str, old: str, new: str):
    return tuple(s.model_copy(update={"sql": s.sql.replace(old, new)}) if s.name == section else s
                 for s in template.sections)


def state_of(conn, key, version):
    with conn.cursor() as cur:
        cur.execute("select state from control.template_versions where template_key = %s and version = %s", (key, version))
        row = cur.fetchone()
    conn.rollback()
    return row[0] if row else None


# ------------------------------------------------------------------ Gate A


@pytest.mark.parametrize("make_bad,expected", [
    (lambda t: variant(t, 201, metrics=t.metrics + (
        catalog.MetricRef(id="mean_time_to_magic", model="metric_incident_flow", version=1),)),
     "mean_time_to_magic"),
    (lambda t: variant(t, 202, metrics=(catalog.MetricRef(id="incidents_opened", model="metric_incident_flow", version=7),)),
     "metric_incident_flow v7"),
    (lambda t: variant(t, 203, sections=with_section_sql(t, "by_status", "group by tenant_id", "group by tenant_idd")),
     "does not compile"),
    (lambda t: variant(t, 204, sections=with_section_sql(t, "by_status", "as incident_count", "as incidents")),
     "declared columns missing from the query: incident_count"),
    (lambda t: variant(t, 205, sections=with_section_sql(
        t, "by_status", "ref('metric_incident_status', 1)", "ref('metric_incident_status', 3)")),
     "metric_incident_status v3 is not in the dbt manifest"),
    (lambda t: variant(t, 206, expectation_suite="no_such_suite"), "suite 'no_such_suite' not found"),
])
def test_gate_a_blocks_submission(conn, template, make_bad, expected):
    bad = make_bad(template)
    with pytest.raises(governance.GateAFailed) as err:
        template_service.submit_template(conn, bad, actor=OWNER)
    assert expected in str(err.value)
    assert state_of(conn, bad.key, bad.version) is None  # nothing was submitted


def test_gate_a_blocks_a_model_version_past_its_deprecation_date(conn, template, monkeypatch):
    """The old version stays usable until its deprecation date, and not after."""
    import copy

    from orchestration.metrics import dbt_manifest

    real = dbt_manifest.load_manifest()
    manifest = copy.deepcopy(real)
    node = next(n for n in manifest["nodes"].values()
                if n["resource_type"] == "model" and n["name"] == "metric_incident_flow" and str(n.get("version")) == "1")
    monkeypatch.setattr(dbt_manifest, "load_manifest", lambda *a, **k: manifest)
    node["deprecation_date"] = "2999-01-01T00:00:00"
    assert not any("deprecated" in p for p in governance.gate_a(conn, template))
    node["deprecation_date"] = "2026-01-01T00:00:00"
    problems = governance.gate_a(conn, template)
    assert any("metric_incident_flow v1 was deprecated on 2026-01-01" in p for p in problems)


def test_gate_a_blocks_an_invalid_suite(conn, template, tmp_path):
    suite = json.loads((Path(governance.EXPECTATIONS_DIR) / "incident_summary.json").read_text())
    suite["expectations"].append({"type": "expect_column_values_to_be_between",
                                  "kwargs": {"column": "no_such_column", "min_value": 0},
                                  "severity": "critical", "meta": {"sections": ["by_status"]}})
    (tmp_path / "incident_summary.json").write_text(json.dumps(suite))
    (tmp_path / "shared.json").write_text((Path(governance.EXPECTATIONS_DIR) / "shared.json").read_text())
    problems = governance.gate_a(conn, template, suites_root=tmp_path)
    assert any("no_such_column" in p for p in problems)


@pytest.mark.parametrize("change,message", [
    ({"formats": ["csv", "docx"]}, "formats"),
    ({"roles": {"run": ["analyst", "wizard"], "receive": ["manager"]}}, "roles"),
    ({"sensitivity": "secret"}, "sensitivity"),
])
def test_unknown_format_role_or_sensitivity_is_refused_at_submit(tmp_path, change, message):
    data = yaml.safe_load(catalog.template_path("incident_summary", 1).read_text())
    data.update(version=210, **change)
    path = tmp_path / "incident_summary.v210.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(catalog.TemplateError, match=message):
        catalog.load_file(path)


def test_two_person_approval(conn, template):
    mine = variant(template, 220, title="Incident summary (two-person check)")
    template_service.submit_template(conn, mine, actor=OWNER)
    assert state_of(conn, mine.key, 220) == "draft"
    principals.upsert_principal(conn, "both-hats@nexus.example", roles=["template_owner", "approver"], tenants=["*"])
    self_made = variant(template, 221, title="Incident summary (self approval)")
    template_service.submit_template(conn, self_made, actor="both-hats@nexus.example")
    with pytest.raises(governance.GateAFailed, match="approval needs a second person"):
        template_service.approve(conn, mine.key, 221, actor="both-hats@nexus.example")
    with pytest.raises(policy.AccessDenied, match="approve"):
        template_service.approve(conn, mine.key, 220, actor=analyst("acme"))  # lacks the approver role
    assert state_of(conn, mine.key, 220) == "draft"
    template_service.approve(conn, mine.key, 220, actor=APPROVER2)
    assert state_of(conn, mine.key, 220) == "approved"
    with pytest.raises(governance.GovernanceError, match="only a draft"):
        template_service.approve(conn, mine.key, 220, actor=APPROVER)
    history = [(e["version"], e["event"], e["actor"]) for e in governance.history(conn, mine.key)]
    assert (220, "submitted", OWNER) in history and (220, "approved", APPROVER2) in history
    assert (221, "gate_a_failed", "both-hats@nexus.example") in history


def test_a_submitted_version_is_immutable(conn, template):
    first = variant(template, 230, title="Immutable v230")
    template_service.submit_template(conn, first, actor=OWNER)
    with pytest.raises(governance.GovernanceError, match="immutable: submit the change as v231"):
        template_service.submit_template(conn, variant(template, 230, title="Changed in place"), actor=OWNER)


def test_changed_system_file_without_new_version_is_refused_by_name(conn, template, tmp_path):
    path = tmp_path / "incident_summary.v1.yaml"
    data = yaml.safe_load(catalog.template_path("incident_summary", 1).read_text())
    data["title"] = "Incident summary, quietly edited"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(catalog.TemplateError) as err:
        governance.register_system_templates(conn, root=tmp_path)
    assert str(path) in str(err.value) and "without a new version number" in str(err.value)
    assert "incident_summary.v2.yaml" in str(err.value)


def test_diff_shows_what_changed(conn, template):
    template_service.submit_template(conn, variant(template, 240, title="Diff me"), actor=OWNER)
    text = governance.diff(conn, "incident_summary", 1, 240)
    assert "-title: Incident summary" in text and "+title: Diff me" in text


# ------------------------------------------------------------------ runs refuse unapproved or tampered templates


def test_unapproved_version_cannot_run(conn, template, tenant_ids):
    draft = variant(template, 250, title="Draft only")
    template_service.submit_template(conn, draft, actor=OWNER)
    request = ReportRequest.for_period(draft, tenant_ids[0], PERIOD, requester=analyst(tenant_ids[0]))
    with pytest.raises(failures.RunFailed) as failed:
        engine.run_report(draft, request)
    assert failed.value.failure_class == "policy_violation" and "not approved" in failed.value.diagnosis
    assert records.get_run(conn, failed.value.run_id).state == "failed"


def test_tampered_template_cannot_run(conn, template, tenant_ids):
    tampered = template.model_copy(update={"title": "Incident summary (edited after approval)"})
    request = ReportRequest.for_period(tampered, tenant_ids[0], PERIOD, requester=analyst(tenant_ids[0]))
    with pytest.raises(failures.RunFailed, match="differs from the submitted version"):
        engine.run_report(tampered, request)


def test_unsubmitted_version_cannot_run(conn, template, tenant_ids):
    ghost = variant(template, 260)
    request = ReportRequest.for_period(ghost, tenant_ids[0], PERIOD, requester=analyst(tenant_ids[0]))
    with pytest.raises(failures.RunFailed, match="has not been submitted"):
        engine.run_report(ghost, request)


def test_deprecated_refuses_scheduled_and_warns_manual(conn, template, tenant_ids):
    old = variant(template, 270, title="To be deprecated")
    template_service.submit_template(conn, old, actor=OWNER)
    template_service.approve(conn, old.key, 270, actor=APPROVER)
    template_service.deprecate(conn, old.key, 270, actor=APPROVER, reason="replaced by v271")
    scheduled = ReportRequest.for_period(old, tenant_ids[0], PERIOD, requester=policy.SCHEDULER, trigger="schedule")
    with pytest.raises(failures.RunFailed, match="scheduled runs are refused"):
        engine.run_report(old, scheduled)
    manual = ReportRequest.for_period(old, tenant_ids[0], PERIOD, requester=analyst(tenant_ids[0]))
    published = engine.run_report(old, manual)
    with conn.cursor() as cur:
        cur.execute("select details->>'warning' from control.audit_log where correlation_id = %s and action = 'run.requested'",
                    (published.run_id,))
        assert "deprecated: replaced by v271" in cur.fetchone()[0]
    conn.rollback()


def test_dagster_launch_of_an_unapproved_version_is_refused(conn, template, tenant_ids):
    from orchestration.defs.reports.assets import build_report_assets
    from orchestration.defs.reports.checks import build_gate_b_check

    draft = variant(template, 280, title="Draft in Dagster")
    template_service.submit_template(conn, draft, actor=OWNER)
    assets = build_report_assets(draft)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tenants", tenant_ids)
        result = dg.materialize(
            [*assets, build_gate_b_check(draft)], instance=instance, raise_on_error=False, resources=RESOURCES,
            partition_key=dg.MultiPartitionKey({"tenant": tenant_ids[0], "period": f"{PERIOD}-01"}),
            tags={"nexus/requester": analyst(tenant_ids[0])},
        )
    assert not result.success
    record = records.run_for_dagster_run(conn, result.run_id, draft.key)
    assert record.state == "failed" and record.failure_class == "policy_violation"
    assert record.snapshot_tables == {}  # refused before any query ran


# ------------------------------------------------------------------ access matrix


@pytest.mark.parametrize("requester,reason", [
    ("dagster-ui", "unknown principal"),
    (analyst("globex"), "not a member of tenant acme"),
    ("viewer@acme.example", "none of the roles that may run"),
    ("executive@acme.example", "none of the roles that may run"),
])
def test_run_refused_for_unauthorized_requesters_and_audited(conn, template, tenant_ids, requester, reason):
    request = ReportRequest.for_period(template, "acme", PERIOD, requester=requester)
    with pytest.raises(failures.RunFailed) as failed:
        engine.run_report(template, request)
    assert failed.value.failure_class == "policy_violation" and reason in failed.value.diagnosis
    with conn.cursor() as cur:
        cur.execute("select outcome, details->>'reason' from control.audit_log"
                    " where correlation_id = %s and action = 'run.denied'",
                    (failed.value.run_id,))
        outcome, logged = cur.fetchone()
    conn.rollback()
    assert outcome == "denied" and reason in logged


def test_deactivated_principal_is_refused(conn, template):
    principals.upsert_principal(conn, "leaver@acme.example", roles=["analyst"], tenants=["acme"])
    principals.deactivate(conn, "leaver@acme.example", actor="platform@nexus.example")
    request = ReportRequest.for_period(template, "acme", PERIOD, requester="leaver@acme.example")
    with pytest.raises(failures.RunFailed, match="deactivated"):
        engine.run_report(template, request)


def test_matrix_is_total_and_platform_admin_can_do_everything_but_roots_own():
    admin = policy.Principal("p", "user", "P", True, frozenset({"platform_admin"}), frozenset({"*"}))
    nobody = policy.Principal("n", "user", "N", True, frozenset({"viewer"}), frozenset({"acme"}))
    assert {"include_withdrawn"} == policy.NOT_IMPLIED
    for action in policy.ACTIONS:
        assert (policy.decide(admin, action, tenant_id="anything") is None) == (action not in policy.NOT_IMPLIED)
    assert policy.decide(nobody, "view", tenant_id="acme") is None
    assert policy.decide(nobody, "approve") is not None
    with pytest.raises(ValueError):
        policy.decide(nobody, "teleport")


def test_custom_template_is_visible_to_its_tenant_only(conn, template):
    custom = template.model_copy(update={"key": "acme_weekly_brief", "title": "Acme brief"})
    principals.upsert_principal(conn, "owner@acme.example", roles=["template_owner"], tenants=["acme"])
    template_service.submit_template(conn, custom, actor="owner@acme.example", tenant_id="acme")
    assert "acme_weekly_brief" in {r["template_key"] for r in governance.list_versions(conn, tenant_id="acme")}
    assert "acme_weekly_brief" not in {r["template_key"] for r in governance.list_versions(conn, tenant_id="globex")}
    with pytest.raises(governance.GovernanceError, match="has not been submitted"):
        governance.load_version(conn, "acme_weekly_brief", 1, tenant_id="globex")
    with pytest.raises(policy.AccessDenied, match="not a member of tenant globex"):
        template_service.submit_template(conn, custom.model_copy(update={"version": 2}), actor="owner@acme.example",
                                         tenant_id="globex")


# ------------------------------------------------------------------ audit chain


def _tamper(conn, sql, params=()):
    with conn, conn.cursor() as cur:
        cur.execute("alter table control.audit_log disable trigger user")
        cur.execute(sql, params)
        cur.execute("alter table control.audit_log enable trigger user")


@pytest.fixture()
def chain(conn):
    """Three fresh rows at the end of the chain; the chain is restored afterwards."""
    with conn:
        seqs = [audit.record(conn, actor="tester", action="test.event", target=f"t{i}", outcome="succeeded",
                             details={"i": i}) for i in range(3)]
    assert audit.verify(conn).ok
    with conn, conn.cursor() as cur:
        cur.execute("create temp table audit_backup as select * from control.audit_log where seq = any(%s)", (seqs,))
    yield seqs
    with conn, conn.cursor() as cur:
        cur.execute("alter table control.audit_log disable trigger user")
        cur.execute("delete from control.audit_log where seq = any(%s)", (seqs,))
        cur.execute("insert into control.audit_log select * from audit_backup")
        cur.execute("alter table control.audit_log enable trigger user")
        cur.execute("drop table audit_backup")
    assert audit.verify(conn).ok


def test_audit_log_refuses_update_and_delete(conn, chain):
    for sql in ("update control.audit_log set actor = 'x' where seq = %s", "delete from control.audit_log where seq = %s"):
        with pytest.raises(psycopg2.Error, match="append-only"):
            with conn, conn.cursor() as cur:
                cur.execute(sql, (chain[0],))


def test_reporting_role_cannot_touch_audit(built):
    from orchestration.db import warehouse

    with warehouse.reader_connection() as reader:
        with pytest.raises(psycopg2.Error, match="permission denied"):
            with reader, reader.cursor() as cur:
                cur.execute("delete from control.audit_log")


def test_audit_verify_detects_an_edited_row(conn, chain):
    _tamper(conn, "update control.audit_log set outcome = 'denied' where seq = %s", (chain[1],))
    result = audit.verify(conn)
    assert result.first_broken_seq == chain[1] and "changed" in result.problem


def test_audit_verify_detects_a_deleted_row(conn, chain):
    _tamper(conn, "delete from control.audit_log where seq = %s", (chain[1],))
    result = audit.verify(conn)
    assert result.first_broken_seq == chain[2] and "does not follow" in result.problem


def test_audit_verify_detects_reordered_rows(conn, chain):
    _tamper(conn, """update control.audit_log a set target = b.target, details = b.details
                     from control.audit_log b where (a.seq, b.seq) in ((%s, %s), (%s, %s))""",
            (chain[0], chain[1], chain[1], chain[0]))
    result = audit.verify(conn)
    assert result.first_broken_seq == chain[0]


def test_runs_and_exports_are_audited(conn, template, tenant_ids):
    request = ReportRequest.for_period(template, tenant_ids[1], PERIOD, requester=analyst(tenant_ids[1]))
    published = engine.run_report(template, request)
    with conn.cursor() as cur:
        cur.execute("select action, outcome, actor, tenant_id from control.audit_log where correlation_id = %s order by seq",
                    (published.run_id,))
        rows = cur.fetchall()
    conn.rollback()
    assert rows == [("run.requested", "allowed", analyst(tenant_ids[1]), tenant_ids[1]),
                    ("run.gate_b", "succeeded", "system", tenant_ids[1]),
                    ("report.exported", "succeeded", analyst(tenant_ids[1]), tenant_ids[1])]
    assert audit.verify(conn).ok
