"""Webhooks: an HTTP POST of a JSON payload, signed per the Standard Webhooks convention.

Headers: webhook-id (derived from the delivery's idempotency key, the same on every resend),
webhook-timestamp (seconds since the epoch at sending), webhook-signature =
"v1," + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")), with the endpoint's secret
(`whsec_` + base64) stored in control.webhook_endpoints. HTTP 429, 5xx, connection errors and
timeouts are transient; any other 4xx (410 Gone included) is permanent.

Every URL passes orchestration/delivery/outbound.py at registration and again at each send,
and the request goes to the address that check approved (no second DNS lookup). A redirect is
never followed: it is a permanent failure, since following it would call an unchecked URL.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import secrets
import socket
import ssl
from typing import Any

from standardwebhooks.webhooks import Webhook

from orchestration.access import audit, policy
from orchestration.delivery import outbound
from orchestration.delivery.errors import SendFailure

USER_AGENT = "nexus-reports-webhook/1"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def register_endpoint(conn, tenant_id: str, url: str, *, actor: str, secret: str | None = None) -> str:
    """Store (or rotate) the signing secret of a tenant's endpoint, in the caller's transaction;
    returns the secret."""
    policy.authorize(conn, actor, "manage_principals", target=f"webhook {url}", tenant_id=tenant_id)
    try:
        outbound.check_now(url)
    except outbound.OutboundRefused as exc:
        audit.record_now(conn, actor=actor, action="delivery.webhook_register.denied", target=url, outcome="denied",
                         tenant_id=tenant_id, details={"reason": str(exc)})
        raise
    secret = secret or new_secret()
    Webhook(secret)  # a malformed secret fails here, not at the first send
    with conn.cursor() as cur:
        cur.execute(
            """insert into control.webhook_endpoints (tenant_id, url, secret, created_by) values (%s, %s, %s, %s)
               on conflict (tenant_id, url) do update set secret = excluded.secret,
                   created_by = excluded.created_by, created_at = now()""",
            (tenant_id, url, secret, actor),
        )
    audit.record(conn, actor=actor, action="delivery.webhook_register", target=url, outcome="succeeded",
                 tenant_id=tenant_id)
    return secret


def endpoint_secret(conn, tenant_id: str, url: str) -> str | None:
    with conn.cursor() as cur:
        cur.execute("select secret from control.webhook_endpoints where tenant_id = %s and url = %s", (tenant_id, url))
        row = cur.fetchone()
    return row[0] if row else None


def webhook_id(idempotency_key: str) -> str:
    return f"msg_{idempotency_key}"


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    return Webhook(secret).sign(msg_id, dt.datetime.fromtimestamp(timestamp, dt.UTC), body)


def timeout_seconds() -> float:
    return float(os.environ.get("REPORTS_WEBHOOK_TIMEOUT") or 10)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address, whatever the host name resolves to by now."""

    def __init__(self, target: outbound.Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the checked address; SNI and the certificate are checked against the host name."""

    def __init__(self, target: outbound.Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _target(url: str) -> outbound.Target:
    """The send-time check: a refused address is permanent, a name that does not resolve transient."""
    try:
        return outbound.check(url)
    except outbound.OutboundRefused as exc:
        raise SendFailure(str(exc), transient=False, refused=True) from exc
    except OSError as exc:
        raise SendFailure(f"webhook not reached: {url} does not resolve: {exc}", transient=True) from exc


def post(url: str, payload: dict[str, Any], *, secret: str, msg_id: str, timestamp: int | None = None) -> int:
    """POST the signed payload to the checked address; returns the HTTP status of a 2xx answer,
    else raises SendFailure (a 3xx is not followed: permanent)."""
    target = _target(url)
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    timestamp = int(timestamp if timestamp is not None else dt.datetime.now(dt.UTC).timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
    kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = kind(target, timeout_seconds())
    try:
        connection.request("POST", target.path, body=body.encode(), headers=headers)
        response = connection.getresponse()
        status, reason = response.status, response.reason
        location = response.getheader("location")
    except (TimeoutError, ConnectionError, OSError, http.client.HTTPException) as exc:
        raise SendFailure(f"webhook not reached: {type(exc).__name__}: {exc}", transient=True) from exc
    finally:
        connection.close()
    if 200 <= status < 300:
        return status
    if 300 <= status < 400:
        raise SendFailure(f"HTTP {status} {reason}: redirect to {location!r} not followed; register the final URL",
                          transient=False, http_status=status)
    transient = status == 429 or status >= 500
    raise SendFailure(f"HTTP {status} {reason}", transient=transient, http_status=status)
