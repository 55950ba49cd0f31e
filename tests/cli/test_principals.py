"""`principals` as an attacker with a tenant admin's id tries it (issue 10, privilege escalation).

Each attack ran on the old CLI: `principals add` of an existing id silently replaced it (another
tenant's viewer became acme's, the platform approver, the platform admin and svc:scheduler lost
their roles, a deactivated principal came back). Now each is refused, the target is unchanged,
and the refusal is an audit row.
"""

from __future__ import annotations

import uuid

import pytest

from orchestration.access import policy
from tests.helpers import principals
from tests.helpers.audit import audit_entries as audit_rows
from tests.helpers.audit import last_seq
from tests.helpers.cli import invoke, one_line_error

ACME_ADMIN = "tenant_admin@acme.example"
PLATFORM_ADMIN = "platform@nexus.example"


def unique(local: str, domain: str) -> str:
    return f"{local}-{uuid.uuid4().hex[:8]}@{domain}"


def make(conn, principal_id: str, roles, tenants, *, active: bool = True) -> str:
    kind = "service" if principal_id.startswith("svc:") else "user"
    principals.upsert_principal(conn, principal_id, kind=kind, roles=roles, tenants=tenants, actor="test")
    if not active:
        principals.deactivate(conn, principal_id, actor="test")
    return principal_id


def grants(conn, principal_id: str) -> tuple:
    p = policy.get_principal(conn, principal_id)
    return p.active, sorted(p.roles), sorted(p.tenants)


def refused_and_audited(conn, result, principal_id: str, change: str, since: int, actor: str = ACME_ADMIN) -> None:
    assert result.exit_code == 1, result.output
    assert "may not" in one_line_error(result.stderr)
    rows = audit_rows(conn, action=f"principal.{change}.denied", target=principal_id, after_seq=since)
    assert [(r.actor, r.outcome) for r in rows] == [(actor, "denied")]


def test_a_tenant_admin_cannot_take_over_another_tenants_principal(built, conn):
    target = make(conn, unique("viewer", "globex.example"), ["viewer"], ["globex"])
    since = last_seq(conn)
    result = invoke("principals", "add", target, "--role", "viewer", "--tenant", "acme", "--as", ACME_ADMIN)
    refused_and_audited(conn, result, target, "add", since)
    assert grants(conn, target) == (True, ["viewer"], ["globex"])
    update = invoke("principals", "update", target, "--tenant", "acme", "--as", ACME_ADMIN)
    refused_and_audited(conn, update, target, "update", since)
    assert grants(conn, target) == (True, ["viewer"], ["globex"])


@pytest.mark.parametrize("target_id,roles", [
    ("approver", ["approver"]),  # the platform-wide approver
    ("platform", ["platform_admin"]),  # the platform admin
    ("svc:", ["analyst", "manager"]),  # a service account such as svc:scheduler
])
def test_a_tenant_admin_cannot_strip_a_platform_wide_principal(built, conn, target_id, roles):
    principal_id = (f"svc:sched-{uuid.uuid4().hex[:8]}" if target_id == "svc:"
                    else unique(target_id, "nexus.example"))
    make(conn, principal_id, roles, ["*"])
    before = grants(conn, principal_id)
    since = last_seq(conn)
    result = invoke("principals", "add", principal_id, "--role", "viewer", "--tenant", "acme", "--as", ACME_ADMIN)
    refused_and_audited(conn, result, principal_id, "add", since)
    for change in (["update", principal_id, "--role", "viewer"], ["deactivate", principal_id]):
        refused_and_audited(conn, invoke("principals", *change, "--as", ACME_ADMIN), principal_id, change[0], since)
        since = last_seq(conn)
    assert grants(conn, principal_id) == before


def test_the_seeded_scheduler_cannot_be_stripped_by_a_tenant_admin(built, conn):
    before = grants(conn, policy.SCHEDULER)
    since = last_seq(conn)
    result = invoke("principals", "add", policy.SCHEDULER, "--role", "viewer", "--tenant", "acme", "--as", ACME_ADMIN)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert audit_rows(conn, target=policy.SCHEDULER, actor=ACME_ADMIN, after_seq=since)
    assert grants(conn, policy.SCHEDULER) == before


def test_a_tenant_admin_cannot_grant_beyond_its_tenants(built, conn):
    since = last_seq(conn)
    for roles, tenants in ((["analyst"], ["*"]), (["approver"], ["acme"]), (["analyst"], ["acme", "globex"])):
        principal_id = unique("new", "acme.example")
        args = [a for r in roles for a in ("--role", r)] + [a for t in tenants for a in ("--tenant", t)]
        refused_and_audited(conn, invoke("principals", "add", principal_id, *args, "--as", ACME_ADMIN),
                            principal_id, "add", since)
        assert policy.get_principal(conn, principal_id) is None


def test_a_deactivated_principal_is_not_reactivated_by_add(built, conn):
    target = make(conn, unique("gone", "acme.example"), ["analyst"], ["acme"], active=False)
    since = last_seq(conn)
    other = invoke("principals", "add", target, "--role", "viewer", "--tenant", "globex", "--as", "tenant_admin@globex.example")
    refused_and_audited(conn, other, target, "add", since, actor="tenant_admin@globex.example")
    same = invoke("principals", "add", target, "--role", "analyst", "--tenant", "acme", "--as", ACME_ADMIN)
    assert same.exit_code == 1 and "already exists (deactivated)" in one_line_error(same.stderr)
    assert [r.outcome for r in audit_rows(conn, action="principal.add.refused", target=target, after_seq=since)] == ["denied"]
    assert grants(conn, target) == (False, ["analyst"], ["acme"])

    wrong_admin = invoke("principals", "reactivate", target, "--as", "tenant_admin@globex.example")
    refused_and_audited(conn, wrong_admin, target, "reactivate", since, actor="tenant_admin@globex.example")
    assert grants(conn, target)[0] is False
    back = invoke("principals", "reactivate", target, "--as", ACME_ADMIN)
    assert back.exit_code == 0, back.output
    (row,) = audit_rows(conn, action="principal.reactivate", target=target, after_seq=since)
    assert row.actor == ACME_ADMIN and row.details["before"]["active"] is False and row.details["after"]["active"] is True
    assert grants(conn, target) == (True, ["analyst"], ["acme"])


def test_changes_are_explicit_and_audited_with_before_and_after(built, conn):
    principal_id = unique("analyst", "acme.example")
    since = last_seq(conn)
    added = invoke("principals", "add", principal_id, "--role", "analyst", "--tenant", "acme", "--as", ACME_ADMIN)
    assert added.exit_code == 0, added.output
    again = invoke("principals", "add", principal_id, "--role", "viewer", "--tenant", "acme", "--as", ACME_ADMIN)
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert grants(conn, principal_id) == (True, ["analyst"], ["acme"])

    changed = invoke("principals", "update", principal_id, "--role", "manager", "--role", "viewer", "--as", ACME_ADMIN)
    assert changed.exit_code == 0, changed.output
    assert "roles manager, viewer" in changed.stdout and "was: roles analyst" in changed.stdout
    (row,) = audit_rows(conn, action="principal.update", target=principal_id, after_seq=since)
    assert row.details["before"]["roles"] == ["analyst"] and row.details["after"]["roles"] == ["manager", "viewer"]
    assert invoke("principals", "deactivate", principal_id, "--as", ACME_ADMIN).exit_code == 0
    (row,) = audit_rows(conn, action="principal.deactivate", target=principal_id, after_seq=since)
    assert (row.details["before"]["active"], row.details["after"]["active"]) == (True, False)
    # A platform admin may change a platform-wide principal.
    approver = make(conn, unique("approver", "nexus.example"), ["approver"], ["*"])
    promoted = invoke("principals", "update", approver, "--role", "approver", "--role", "template_owner",
                      "--as", PLATFORM_ADMIN)
    assert promoted.exit_code == 0, promoted.output


@pytest.mark.parametrize("principal_id,message", [
    ("", "principal id is empty"),
    ("system", "reserved"),
    ("root", "reserved"),
    ("svc:retention", "reserved"),
    ("svc:late-data", "reserved"),
    ("nobody", "expected an e-mail address"),
    ("Viewer@Acme.example", "(lowercase)"),
    ("viewer@acme.example\n", "expected an e-mail address"),
    ("\u0430nalyst@acme.example", "U+0430 CYRILLIC SMALL LETTER A"),  # Cyrillic a
    ("\uff41nalyst@acme.example", "non-ASCII"),  # full-width a: NFKC folds it to 'a'
    ("ana\u200blyst@acme.example", "non-ASCII"),  # zero-width space
])
def test_malformed_reserved_and_confusable_ids_are_refused(built, conn, principal_id, message):
    since = last_seq(conn)
    result = invoke("principals", "add", principal_id, "--role", "viewer", "--tenant", "acme", "--as", PLATFORM_ADMIN)
    assert result.exit_code == 1, result.output
    assert message in one_line_error(result.stderr)
    assert [r.outcome for r in audit_rows(conn, action="principal.add.refused", after_seq=since)] == ["denied"]
    assert policy.get_principal(conn, principal_id) is None


@pytest.mark.parametrize("tenant,message", [
    ("\u0430cme", "non-ASCII"),  # Cyrillic a: looks like acme
    ("ACME", "invalid tenant id"),
    ("acmee", "unknown tenant acmee; did you mean acme?"),
])
def test_confusable_or_unknown_tenants_are_refused(built, conn, tenant, message):
    principal_id = unique("viewer", "acme.example")
    result = invoke("principals", "add", principal_id, "--role", "viewer", "--tenant", tenant, "--as", PLATFORM_ADMIN)
    assert result.exit_code == 1 and message in one_line_error(result.stderr)
    assert policy.get_principal(conn, principal_id) is None
