"""Bearer JWTs from an OIDC issuer: a real JWKS served over HTTP on loopback, keys made here with
`cryptography`, the API under uvicorn. Only a JWT the issuer's key signed, for this audience,
unexpired, naming a known active principal, gets in; everything else is 401 and audited."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import http.server
import json
import threading
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from orchestration.access import oidc
from orchestration.api.serving import free_port, serving

ISSUER, AUDIENCE, KID = "https://idp.example.test", "nexus-reports", "key-1"
ENTITIES = "/reporting/registry/entities"


def _rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@contextlib.contextmanager
def _jwks_server(public_key):
    jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    body = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def issuer_key():
    return _rsa()


@pytest.fixture(scope="module")
def oidc_api(built, issuer_key):
    from orchestration.api.app import create_app

    with _jwks_server(issuer_key.public_key()) as jwks_url:
        config = oidc.OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=jwks_url)
        with serving(create_app(oidc_config=config), name="reporting-api-oidc") as base:
            yield base


def _token(key, **over) -> str:
    now = dt.datetime.now(dt.UTC)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-123", "email": "analyst@acme.example",
              "iat": now, "exp": now + dt.timedelta(minutes=5), "jti": uuid.uuid4().hex}
    claims.update(over)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256", headers={"kid": KID})


def _hs256(claims: dict, secret: bytes) -> str:
    """Signed by hand: PyJWT itself refuses to make this token."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = f"{part(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': KID}).encode())}.{part(json.dumps(claims).encode())}"
    return f"{signing}.{part(hmac.new(secret, signing.encode(), hashlib.sha256).digest())}"


def _get(base: str, token: str, request_id: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", **({"X-Request-ID": request_id} if request_id else {})}
    return httpx.get(f"{base}{ENTITIES}", headers=headers, timeout=30)


def test_a_jwt_signed_by_the_issuer_names_the_principal(oidc_api, issuer_key, conn):
    resp = _get(oidc_api, _token(issuer_key), "oidc-ok-1")
    assert resp.status_code == 200, resp.text
    with conn, conn.cursor() as cur:
        cur.execute("select actor, outcome from control.audit_log where correlation_id = 'oidc-ok-1'")
        assert cur.fetchall() == [("analyst@acme.example", "succeeded")]


@pytest.mark.parametrize("case", ["expired", "audience", "issuer", "other_key", "unknown_principal", "no_email",
                                  "not_yet", "hmac_with_public_key", "unsigned"])
def test_anything_else_is_401(oidc_api, issuer_key, case):
    now = dt.datetime.now(dt.UTC)
    if case == "other_key":
        token = _token(_rsa())
    elif case == "hmac_with_public_key":  # the classic algorithm confusion: the public key as an HMAC secret
        public = issuer_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)
        token = _hs256({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "email": "analyst@acme.example",
                        "exp": int((now + dt.timedelta(minutes=5)).timestamp())}, public)
    elif case == "unsigned":
        token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "email": "analyst@acme.example",
                            "exp": now + dt.timedelta(minutes=5)}, None, algorithm="none", headers={"kid": KID})
    else:
        over = {"expired": {"exp": now - dt.timedelta(minutes=5)}, "audience": {"aud": "someone-else"},
                "issuer": {"iss": "https://evil.example"}, "unknown_principal": {"email": "nobody@acme.example"},
                "no_email": {"email": None}, "not_yet": {"nbf": now + dt.timedelta(hours=1)}}[case]
        token = _token(issuer_key, **over)
    resp = _get(oidc_api, token)
    assert resp.status_code == 401, (case, resp.text)
    assert resp.headers["content-type"].startswith("application/problem+json")


def test_a_deactivated_principal_is_401_at_once(oidc_api, issuer_key, conn):
    from tests.helpers import principals

    principals.upsert_principal(conn, "leaver-oidc@acme.example", roles=["viewer"], tenants=["acme"], actor="test")
    token = _token(issuer_key, email="leaver-oidc@acme.example")
    assert _get(oidc_api, token).status_code == 200
    principals.deactivate(conn, "leaver-oidc@acme.example", actor="tenant_admin@acme.example")
    assert _get(oidc_api, token).status_code == 401


def test_a_scope_claim_narrows_what_the_caller_may_do(oidc_api, issuer_key):
    token = _token(issuer_key, scope="openid email view")
    definition = {"report_name": "x", "entity_ids": ["nope"], "aggregates": [
        {"function": "count", "field": "x.y", "alias": "n"}]}
    resp = httpx.post(f"{oidc_api}/reports/definitions", json=definition, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 403 and "not scoped for define" in resp.json()["detail"]
