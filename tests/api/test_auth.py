"""Who may call the API: bearer tokens checked on every request, problem+json on refusal, and
every request audited under its correlation id."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestration.services import tokens as token_service
from tests.helpers import principals

from .conftest import auth

ENTITIES = "/reporting/registry/entities"


def _audit(conn, correlation_id: str) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute("select actor, action, target, outcome, details from control.audit_log where correlation_id = %s"
                    " order by seq", (correlation_id,))
        return cur.fetchall()


def _assert_401(resp) -> None:
    assert resp.status_code == 401
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.headers["www-authenticate"].startswith("Bearer")
    body = resp.json()
    assert body["status"] == 401 and body["title"] == "Unauthorized" and body["instance"] == ENTITIES


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nxr_not-a-real-token", "Basic dXNlcjpwYXNz", "Token abc"])
def test_missing_or_bad_credentials_are_401_problems_and_audited(client, conn, header):
    headers = {"X-Request-ID": "auth-probe-1"} if header is None else {"Authorization": header}
    resp = client.get(ENTITIES, headers=headers)
    _assert_401(resp)
    rid = resp.headers["x-request-id"]
    rows = _audit(conn, rid)
    assert [(r[0], r[1], r[3]) for r in rows] == [("(anonymous)", "api.request", "denied")]
    assert rows[0][4]["status"] == 401


def test_request_id_is_echoed_generated_or_replaced_when_unsafe(client, token_for):
    headers = auth(token_for("analyst@acme.example"))
    assert client.get(ENTITIES, headers={**headers, "X-Request-ID": "req-42.a_b"}).headers["x-request-id"] == "req-42.a_b"
    generated = client.get(ENTITIES, headers=headers).headers["x-request-id"]
    assert len(generated) == 32
    for unsafe in ("<script>alert(1)</script>", "a b;c", "x" * 129):
        replaced = client.get(ENTITIES, headers={**headers, "X-Request-ID": unsafe}).headers["x-request-id"]
        assert replaced != unsafe and len(replaced) == 32


def test_a_good_token_is_audited_under_its_principal_with_timing(client, conn, token_for):
    resp = client.get(ENTITIES, headers={**auth(token_for("analyst@acme.example")), "X-Request-ID": "auth-ok-1"})
    assert resp.status_code == 200
    [(actor, action, target, outcome, details)] = _audit(conn, "auth-ok-1")
    assert (actor, action, target, outcome) == ("analyst@acme.example", "api.request", f"GET {ENTITIES}", "succeeded")
    assert details["status"] == 200 and details["ms"] >= 0


def test_token_is_stored_only_as_its_hash(conn):
    issued = token_service.create_token(conn, actor="viewer@acme.example", principal_id="viewer@acme.example")
    with conn, conn.cursor() as cur:
        cur.execute("select * from control.api_tokens where token_id = %s", (issued.token.token_id,))
        row = cur.fetchone()
        cur.execute("select count(*) from control.audit_log where details::text like %s", (f"%{issued.secret}%",))
        (in_audit,) = cur.fetchone()
    assert issued.secret not in " ".join(str(v) for v in row)
    assert in_audit == 0


def test_revoked_token_is_401_at_once(client, conn):
    issued = token_service.create_token(conn, actor="viewer@acme.example", principal_id="viewer@acme.example")
    assert client.get(ENTITIES, headers=auth(issued.secret)).status_code == 200
    token_service.revoke_token(conn, actor="viewer@acme.example", token_id=issued.token.token_id)
    _assert_401(client.get(ENTITIES, headers=auth(issued.secret)))


def test_expired_token_is_401_when_the_clock_moves(client, conn, api_clock):
    issued = token_service.create_token(conn, actor="viewer@acme.example", principal_id="viewer@acme.example",
                                        lifetime=dt.timedelta(hours=1), now=api_clock.now)
    assert client.get(ENTITIES, headers=auth(issued.secret)).status_code == 200
    api_clock.now += dt.timedelta(hours=1, seconds=1)
    _assert_401(client.get(ENTITIES, headers=auth(issued.secret)))


def test_a_deactivated_principals_token_is_401(client, conn):
    principals.upsert_principal(conn, "leaver@acme.example", roles=["viewer"], tenants=["acme"], actor="test")
    issued = token_service.create_token(conn, actor="leaver@acme.example", principal_id="leaver@acme.example")
    assert client.get(ENTITIES, headers=auth(issued.secret)).status_code == 200
    principals.deactivate(conn, "leaver@acme.example", actor="tenant_admin@acme.example")
    _assert_401(client.get(ENTITIES, headers=auth(issued.secret)))


def test_a_scope_narrows_what_the_token_may_do(client, token_for):
    body = {"entity_name": "scoped_probe", "data_source": {"model": "metric_incident_flow", "version": 1},
            "allowed_fields": [{"name": "tenant_id", "type": "text"}], "classification": "internal", "tenant_id": "acme"}
    view_only = token_for("tenant_admin@acme.example", ("view",))
    resp = client.post(ENTITIES, json=body, headers=auth(view_only))
    assert resp.status_code == 403 and "not scoped for manage_registry" in resp.json()["detail"]


def test_a_token_from_the_command_line_works_and_its_revocation_is_immediate(client):
    from tests.helpers.cli import invoke

    made = invoke("tokens", "create", "--for", "executive@globex.example", "--expires-in", "2h", "--scope", "view",
                  "--as", "tenant_admin@globex.example")
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[-1]
    token_id = made.stdout.split()[1]
    assert secret.startswith("nxr_") and secret not in made.stdout.splitlines()[0]
    assert client.get(ENTITIES, headers=auth(secret)).status_code == 200
    listed = invoke("tokens", "list", "--for", "executive@globex.example", "--as", "tenant_admin@globex.example")
    assert token_id in listed.stdout and secret not in listed.stdout and "view" in listed.stdout
    refused = invoke("tokens", "create", "--for", "executive@globex.example", "--as", "tenant_admin@acme.example")
    assert refused.exit_code == 1 and "may not" in refused.stderr and "Traceback" not in refused.output
    too_long = invoke("tokens", "create", "--for", "executive@globex.example", "--expires-in", "400d",
                      "--as", "executive@globex.example")
    assert too_long.exit_code == 2
    assert invoke("tokens", "revoke", token_id, "--as", "executive@globex.example").exit_code == 0
    _assert_401(client.get(ENTITIES, headers=auth(secret)))


def test_download_links_are_served_by_the_same_app(client, conn):
    resp = client.get("/links/not-a-real-token-0123456789")
    assert resp.status_code == 404 and resp.headers["referrer-policy"] == "no-referrer"
    with conn, conn.cursor() as cur:
        cur.execute("select outcome from control.access_events order by event_id desc limit 1")
        assert cur.fetchone() == ("denied",)
