"""Gate A against a hostile template owner: the SQL guard at submit and approve, nothing it
refuses is run, and no refusal carries what the database said."""

from __future__ import annotations

import pytest

from orchestration.access import policy
from orchestration.catalog import sql_guard
from orchestration.catalog import templates as catalog
from orchestration.db.warehouse import json_param
from orchestration.governance import lifecycle as governance
from orchestration.governance import section_checks
from orchestration.metrics import dbt_manifest
from orchestration.services import templates as template_service
from tests.helpers import principals

from ..helpers.isolation import ATTACKS, hostile_template, rls_models

MODEL = next(m for m in rls_models() if m.name == "metric_incident_status")


@pytest.fixture(scope="module")
def base(built):
    return catalog.load("incident_summary", 1)


@pytest.fixture(scope="module")
def owner(built, tenant_ids):
    """Tenant B's template owner: the attacker."""
    from orchestration.db import warehouse

    principal = f"template_owner@{tenant_ids[1]}.example"
    with warehouse.connection() as conn:
        principals.upsert_principal(conn, principal, roles=["template_owner"], tenants=[tenant_ids[1]])
    return principal


def _state(conn, key: str) -> str | None:
    with conn.cursor() as cur:
        cur.execute("select state from control.template_versions where template_key = %s", (key,))
        row = cur.fetchone()
    conn.rollback()
    return row[0] if row else None


@pytest.mark.parametrize("attack", ATTACKS, ids=str)
def test_a_hostile_section_is_refused_at_submit_and_never_run(conn, base, owner, tenant_ids, attack):
    key = f"loot_{attack.name}"[:31]
    hostile = hostile_template(base, key, attack.sql(MODEL.ref, tenant_ids[0]))
    with pytest.raises(governance.GateAFailed) as err:
        template_service.submit_template(conn, hostile, actor=owner, tenant_id=tenant_ids[1])
    message = str(err.value)
    assert attack.refusal in message and "refused by the SQL guard, not run" in message
    assert tenant_ids[0] not in message.replace(attack.sql(MODEL.ref, tenant_ids[0]), "")
    assert _state(conn, key) is None


def test_approve_runs_the_guard_too(conn, base, owner, tenant_ids):
    """A draft that got in some other way (an older release, a restore) is refused at approval."""
    hostile = hostile_template(base, "loot_legacy_draft", ATTACKS[0].sql(MODEL.ref, tenant_ids[0]))
    with conn, conn.cursor() as cur:
        cur.execute("""insert into control.template_versions (template_key, version, owner_tenant, content_hash, content, author)
                       values (%s, 1, %s, %s, %s, %s)""",
                    (hostile.key, tenant_ids[1], hostile.content_hash, json_param(hostile.model_dump(mode="json")), owner))
    with pytest.raises(governance.GateAFailed, match=r"set_config\(\) is not allowed"):
        template_service.approve(conn, hostile.key, 1, actor=policy.APPROVERS[0])
    assert _state(conn, hostile.key) == "draft"


def test_database_errors_reach_the_submitter_only_as_their_condition(conn, base, owner, tenant_ids, monkeypatch):
    """Even past the guard: a DO block that closes Gate A's wrapper and raises a value is reported
    as 'raise exception' with its SQLSTATE, never with the text it raised."""
    monkeypatch.setattr(sql_guard, "check", lambda *a, **k: None)
    sql = (f"select tenant_id from {MODEL.ref}) as gate_a limit 0;\n"
           "do $$ begin raise exception using message = 'LEAKED-' || current_user; end $$;\n"
           f"select * from (select tenant_id from {MODEL.ref}")
    problems = governance.gate_a(conn, hostile_template(base, "loot_do", sql))
    assert problems and not any("LEAKED" in p for p in problems), problems
    assert any("raise exception (SQLSTATE P0001)" in p for p in problems), problems


def test_a_compile_error_names_condition_and_line(conn, base):
    section = base.section("by_status")
    broken = section.model_copy(update={"sql": section.sql.replace("group by tenant_id", "group by tenant_idd")})
    template = base.model_copy(update={"sections": (broken,), "primary_section": "by_status"})
    problems = section_checks.problems(template, dbt_manifest.load_manifest())
    line = next(i for i, text in enumerate(broken.sql.splitlines(), 1) if "tenant_idd" in text)
    assert problems == [f"section by_status: query does not compile as report_reader: undefined column "
                        f"(SQLSTATE 42703) near line {line} of the section's SQL; the database's message is withheld "
                        f"from Gate A reports"]


def test_a_literal_percent_passes_gate_a(conn, base, owner, tenant_ids):
    section = base.section("by_status")
    sql = section.sql.replace("group by", "and status::text not like 'zz%' and 7 % 2 = 1\ngroup by", 1)
    custom = base.model_copy(update={
        "key": "percent_brief", "sections": tuple(s.model_copy(update={"sql": sql}) if s.name == "by_status" else s
                                                  for s in base.sections)})
    template_service.submit_template(conn, custom, actor=owner, tenant_id=tenant_ids[1])
    assert _state(conn, "percent_brief") == "draft"


def test_a_template_owner_cannot_run_python_at_submit(conn, base, owner, tenant_ids):
    payload = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    hostile = hostile_template(base, "loot_jinja", f"select tenant_id from {MODEL.ref} -- {payload}")
    with pytest.raises(governance.GateAFailed, match="sandbox"):
        template_service.submit_template(conn, hostile, actor=owner, tenant_id=tenant_ids[1])
