"""Principals made and changed for a test, unchecked (access.policy's fixture functions), each
committed at once so other processes (the CLI, the HTTP servers under test) see it."""

from __future__ import annotations

from typing import Any

from orchestration.access import policy


def upsert_principal(conn, principal_id: str, **kwargs: Any) -> None:
    with conn:  # the test is the caller that owns the transaction
        policy.upsert_principal(conn, principal_id, **kwargs)


def deactivate(conn, principal_id: str, *, actor: str) -> None:
    with conn:
        policy.deactivate(conn, principal_id, actor=actor)
