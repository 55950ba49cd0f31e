"""Who may make, list and revoke API tokens, and what the token store refuses."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestration.access import policy
from orchestration.errors import Conflict, Invalid, NotFound
from orchestration.services import tokens as service


def test_anyone_active_makes_their_own_token(conn, built):
    issued = service.create_token(conn, actor="viewer@globex.example", principal_id="viewer@globex.example")
    assert issued.secret.startswith("nxr_") and issued.token.principal_id == "viewer@globex.example"
    assert issued.token.expires_at - issued.token.created_at == dt.timedelta(days=30)


def test_a_tenant_admin_makes_tokens_for_its_own_tenants_people_only(conn, built):
    made = service.create_token(conn, actor="tenant_admin@acme.example", principal_id="analyst@acme.example")
    assert made.token.created_by == "tenant_admin@acme.example"
    for other in ("analyst@globex.example", policy.SCHEDULER, "platform@nexus.example", policy.APPROVERS[0]):
        with pytest.raises(policy.AccessDenied):
            service.create_token(conn, actor="tenant_admin@acme.example", principal_id=other)


def test_an_analyst_cannot_make_a_token_for_a_colleague(conn, built):
    with pytest.raises(policy.AccessDenied):
        service.create_token(conn, actor="analyst@acme.example", principal_id="manager@acme.example")


def test_refusals_are_specific(conn, built):
    with pytest.raises(NotFound, match="no principal"):
        service.create_token(conn, actor="platform@nexus.example", principal_id="nobody@acme.example")
    with pytest.raises(Invalid, match="between 1 second and 365 days"):
        service.create_token(conn, actor="viewer@acme.example", principal_id="viewer@acme.example",
                             lifetime=dt.timedelta(days=366))
    with pytest.raises(Invalid, match="unknown token scope"):
        service.create_token(conn, actor="viewer@acme.example", principal_id="viewer@acme.example", scopes=("sudo",))
    issued = service.create_token(conn, actor="viewer@acme.example", principal_id="viewer@acme.example")
    service.revoke_token(conn, actor="tenant_admin@acme.example", token_id=issued.token.token_id)
    with pytest.raises(Conflict, match="already revoked"):
        service.revoke_token(conn, actor="viewer@acme.example", token_id=issued.token.token_id)


def test_listing_shows_state_and_never_the_secret(conn, built):
    issued = service.create_token(conn, actor="executive@acme.example", principal_id="executive@acme.example")
    listed = service.list_tokens(conn, actor="executive@acme.example")
    mine = next(t for t in listed if t.token_id == issued.token.token_id)
    assert mine.state(dt.datetime.now(dt.UTC)) == "active"
    assert not hasattr(mine, "secret")
    with pytest.raises(policy.AccessDenied):
        service.list_tokens(conn, actor="executive@acme.example", principal_id="analyst@acme.example")
