"""Principals' vertical and region scopes (stored, loaded, set through the CLI, audited) and the
root role: the only one that may include consent-withdrawn subjects, platform_admin included."""

from __future__ import annotations

import uuid

import pytest

from orchestration.access import policy
from tests.helpers import principals
from tests.helpers.audit import audit_entries, last_seq
from tests.helpers.cli import invoke, one_line_error

PLATFORM_ADMIN = "platform@nexus.example"
ACME_ADMIN = "tenant_admin@acme.example"


def unique(local: str, domain: str) -> str:
    return f"{local}-{uuid.uuid4().hex[:8]}@{domain}"


def scopes(conn, principal_id: str) -> tuple:
    p = policy.get_principal(conn, principal_id)
    return p.verticals, p.geo_scopes


def test_add_with_scopes_is_stored_loaded_and_audited(built, conn):
    target = unique("programme", "acme.example")
    since = last_seq(conn)
    result = invoke("principals", "add", target, "--role", "analyst", "--tenant", "acme", "--vertical", "healthcare",
                    "--vertical", "finance", "--region", "emea", "--as", ACME_ADMIN)
    assert result.exit_code == 0, result.output
    assert "verticals=finance,healthcare regions=emea" in result.stdout
    assert scopes(conn, target) == (frozenset({"healthcare", "finance"}), frozenset({"emea"}))
    [row] = audit_entries(conn, action="principal.add", target=target, after_seq=since)
    assert row.actor == ACME_ADMIN and row.outcome == "succeeded"
    assert row.details["scopes"] == {"before": None, "after": {"verticals": ["finance", "healthcare"], "regions": ["emea"]}}


def test_without_scopes_a_principal_is_unrestricted(built, conn):
    target = unique("analyst", "acme.example")
    assert invoke("principals", "add", target, "--role", "analyst", "--tenant", "acme", "--as", ACME_ADMIN).exit_code == 0
    assert scopes(conn, target) == (None, None)
    # and the existing constructor calls keep working
    p = policy.Principal("x@acme.example", "user", "x", True, frozenset({"viewer"}), frozenset({"acme"}))
    assert (p.verticals, p.geo_scopes) == (None, None)


def test_scope_command_replaces_what_is_given_keeps_the_rest_and_is_audited(built, conn):
    target = unique("scoped", "acme.example")
    principals.upsert_principal(conn, target, roles=["analyst"], tenants=["acme"], verticals=["finance"],
                            regions=["amer", "apac"], actor="test")
    since = last_seq(conn)
    result = invoke("principals", "scope", target, "--vertical", "public_sector", "--vertical", "healthcare",
                    "--as", ACME_ADMIN)
    assert result.exit_code == 0, result.output
    assert scopes(conn, target) == (frozenset({"public_sector", "healthcare"}), frozenset({"amer", "apac"}))
    assert "(was: verticals=finance regions=amer,apac)" in result.stdout
    [row] = audit_entries(conn, action="principal.scope", target=target, after_seq=since)
    assert (row.actor, row.outcome, row.tenant_id) == (ACME_ADMIN, "succeeded", "acme")
    assert row.details["scopes"] == {
        "before": {"verticals": ["finance"], "regions": ["amer", "apac"]},
        "after": {"verticals": ["healthcare", "public_sector"], "regions": ["amer", "apac"]}}

    result = invoke("principals", "scope", target, "--region", "*", "--as", ACME_ADMIN)
    assert result.exit_code == 0, result.output
    assert scopes(conn, target) == (frozenset({"public_sector", "healthcare"}), None)

    since = last_seq(conn)
    again = invoke("principals", "scope", target, "--region", "*", "--as", ACME_ADMIN)
    assert again.exit_code == 0 and "no change" in again.stdout
    assert audit_entries(conn, action="principal.scope", target=target, after_seq=since) == []

    listed = invoke("principals", "list")
    assert any(target in line and "verticals=healthcare,public_sector regions=*" in line
               for line in listed.stdout.splitlines())


def test_a_tenant_admin_cannot_scope_another_tenants_principal(built, conn):
    target = unique("viewer", "globex.example")
    principals.upsert_principal(conn, target, roles=["viewer"], tenants=["globex"], actor="test")
    since = last_seq(conn)
    result = invoke("principals", "scope", target, "--vertical", "finance", "--as", ACME_ADMIN)
    assert result.exit_code == 1 and "may not" in one_line_error(result.stderr)
    assert scopes(conn, target) == (None, None)
    [row] = audit_entries(conn, action="principal.scope.denied", target=target, after_seq=since)
    assert (row.actor, row.outcome) == (ACME_ADMIN, "denied")


@pytest.mark.parametrize("args", [
    ["--vertical", "Public Sector"], ["--vertical", "*", "--vertical", "finance"], ["--region", "emea'; --"], [],
])
def test_malformed_scopes_are_refused_and_audited(built, conn, args):
    target = unique("scoped", "acme.example")
    principals.upsert_principal(conn, target, roles=["analyst"], tenants=["acme"], actor="test")
    since = last_seq(conn)
    result = invoke("principals", "scope", target, *args, "--as", ACME_ADMIN)
    assert result.exit_code != 0
    one_line_error(result.stderr)
    assert scopes(conn, target) == (None, None)
    [row] = audit_entries(conn, action="principal.scope.refused", target=target, after_seq=since)
    assert row.outcome == "denied"


def test_only_a_platform_admin_makes_a_root(built, conn):
    target = unique("root", "acme.example")
    since = last_seq(conn)
    refused = invoke("principals", "add", target, "--role", "root", "--tenant", "acme", "--as", ACME_ADMIN)
    assert refused.exit_code == 1 and "platform-wide" in one_line_error(refused.stderr)
    assert policy.get_principal(conn, target) is None
    assert audit_entries(conn, action="principal.add.denied", target=target, after_seq=since)
    made = invoke("principals", "add", target, "--role", "root", "--tenant", "*", "--as", PLATFORM_ADMIN)
    assert made.exit_code == 0, made.output
    assert policy.get_principal(conn, target).roles == {"root"}


def test_include_withdrawn_is_roots_alone(built, conn):
    root = policy.get_principal(conn, policy.ROOT)
    admin = policy.get_principal(conn, PLATFORM_ADMIN)
    assert root.roles == {"root"} and "platform_admin" in admin.roles
    assert policy.decide(root, "include_withdrawn", tenant_id="acme") is None
    assert "include_withdrawn" in policy.decide(admin, "include_withdrawn", tenant_id="acme")
    assert policy.decide(admin, "manage_registry", tenant_id="acme") is None  # the exception is only this action
    for other in ("analyst@acme.example", "tenant_admin@acme.example", policy.APPROVERS[0]):
        assert policy.decide(policy.get_principal(conn, other), "include_withdrawn", tenant_id="acme") is not None

    since = last_seq(conn)
    with pytest.raises(policy.AccessDenied):
        policy.authorize(conn, PLATFORM_ADMIN, "include_withdrawn", target="report acme", tenant_id="acme")
    [row] = audit_entries(conn, action="include_withdrawn.denied", actor=PLATFORM_ADMIN, after_seq=since)
    assert row.outcome == "denied"
    assert policy.authorize(conn, policy.ROOT, "include_withdrawn", target="report acme", tenant_id="acme").roles == {
        "root"}
    principals.upsert_principal(conn, "root-off@nexus.example", roles=["root"], tenants=["*"], actor="test")
    principals.deactivate(conn, "root-off@nexus.example", actor="test")
    assert "deactivated" in policy.decide(policy.get_principal(conn, "root-off@nexus.example"), "include_withdrawn")


def test_sample_principals_include_scoped_ones_and_root(built, conn, tenant_ids):
    assert scopes(conn, "programme@acme.example") == (frozenset({"healthcare", "finance"}), None)
    assert policy.get_principal(conn, "programme@acme.example").tenants == {"acme"}
    assert scopes(conn, "emea@globex.example") == (None, frozenset({"emea"}))
    root = policy.get_principal(conn, policy.ROOT)
    assert root.active and root.roles == {"root"} and root.tenants == {"*"}
    # the programme's verticals are two of acme's three in the sample data
    with conn, conn.cursor() as cur:
        cur.execute("select array_agg(distinct vertical) from raw.sites where tenant_id = 'acme'")
        verticals = set(cur.fetchone()[0])
    assert len(verticals) == 3 and {"healthcare", "finance"} < verticals


def _principal(roles=("analyst",), verticals=None, regions=None) -> policy.Principal:
    return policy.Principal("p@acme.example", "user", "p", True, frozenset(roles), frozenset({"acme"}),
                            frozenset(verticals) if verticals else None, frozenset(regions) if regions else None)
