"""Idempotency-Keys of run requests (control.run_idempotency_keys).

The same principal sending the same key gets the same run, however often it retries; the same
key with a different request is refused (a client bug that would otherwise lose a run). The
caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from orchestration.errors import Invalid

MAX_KEY_LENGTH = 200


def fingerprint(target: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"target": target, "body": body}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _checked(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise Invalid(f"Idempotency-Key: 1 to {MAX_KEY_LENGTH} printable characters")
    return key


def find(conn, principal_id: str, key: str, fingerprint_: str) -> str | None:
    """The run this key already stands for, or None; Invalid when it stood for another request."""
    with conn.cursor() as cur:
        cur.execute("select fingerprint, run_id from control.run_idempotency_keys "
                    "where principal_id = %s and idempotency_key = %s", (principal_id, _checked(key)))
        row = cur.fetchone()
    if row is None:
        return None
    if row[0] != fingerprint_:
        raise Invalid("Idempotency-Key was used for a different request; use a new key for a new request")
    return row[1]


def remember(conn, principal_id: str, key: str, fingerprint_: str, run_id: str) -> str:
    """Bind the key to the run; if a concurrent request bound it first, that run wins."""
    with conn.cursor() as cur:
        cur.execute(
            """insert into control.run_idempotency_keys (principal_id, idempotency_key, fingerprint, run_id)
               values (%s, %s, %s, %s) on conflict (principal_id, idempotency_key) do nothing""",
            (principal_id, _checked(key), fingerprint_, run_id))
    return find(conn, principal_id, key, fingerprint_) or run_id
