"""Webhooks: an HTTP POST of a JSON payload, signed per the Standard Webhooks convention.

Headers: webhook-id (derived from the delivery's idempotency key, the same on every resend),
webhook-timestamp (seconds since the epoch at sending), webhook-signature =
"v1," + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")), with the endpoint's secret
(`whsec_` + base64) stored in control.webhook_endpoints. HTTP 429, 5xx, connection errors and
timeouts are transient; any other 4xx (410 Gone included) is permanent.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import urllib.error
import urllib.request
from typing import Any

from standardwebhooks.webhooks import Webhook

from orchestration.access import audit, policy
from orchestration.delivery.errors import SendFailure

USER_AGENT = "nexus-reports-webhook/1"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def register_endpoint(conn, tenant_id: str, url: str, *, actor: str, secret: str | None = None) -> str:
    """Store (or rotate) the signing secret of a tenant's endpoint; returns the secret."""
    policy.authorize(conn, actor, "manage_principals", target=f"webhook {url}", tenant_id=tenant_id)
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"a webhook endpoint is an http(s) URL, not {url!r}")
    secret = secret or new_secret()
    Webhook(secret)  # a malformed secret fails here, not at the first send
    with conn:
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


def post(url: str, payload: dict[str, Any], *, secret: str, msg_id: str, timestamp: int | None = None) -> int:
    """POST the signed payload; returns the HTTP status of a 2xx answer, else raises SendFailure."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    timestamp = int(timestamp if timestamp is not None else dt.datetime.now(dt.UTC).timestamp())
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    })
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds()) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        transient = status == 429 or status >= 500
        raise SendFailure(f"HTTP {status} {exc.reason}", transient=transient, http_status=status) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SendFailure(f"webhook not reached: {type(reason).__name__}: {reason}", transient=True) from exc
    if not 200 <= status < 300:
        raise SendFailure(f"HTTP {status}", transient=False, http_status=status)
    return status
