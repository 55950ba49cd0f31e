"""Artifact index use cases: list the index, place or release a legal hold. Typed in and out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from orchestration.artifacts import index


@dataclass(frozen=True)
class ArtifactEntry:
    run_id: str
    tenant_id: str
    template_key: str
    template_version: int
    variant: str
    fmt: str
    name: str
    store: str
    storage_key: str
    bytes: int
    sensitivity: str
    retention_until: dt.datetime
    legal_hold: bool
    created_at: dt.datetime
    deleted_at: dt.datetime | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> ArtifactEntry:
        return cls(row["run_id"], row["tenant_id"], row["template_key"], row["template_version"], row["variant"],
                   row["format"], row["name"], row["store"], row["storage_key"], row["bytes"], row["sensitivity"],
                   row["retention_until"], row["legal_hold"], row["created_at"], row["deleted_at"])

    @property
    def state(self) -> str:
        if self.deleted_at:
            return f"deleted {self.deleted_at:%Y-%m-%d}"
        return "LEGAL HOLD" if self.legal_hold else "live"


def list_artifacts(conn, *, tenant_id: str | None = None, run_id: str | None = None, limit: int = 200) -> list[ArtifactEntry]:
    """Indexed artifacts, newest first (deleted ones included, marked)."""
    return [ArtifactEntry.of(r) for r in index.list_artifacts(conn, tenant_id=tenant_id, run_id=run_id, limit=limit)]


def set_hold(conn, run_id: str, *, hold: bool, actor: str, reason: str) -> int:
    """Place or release a legal hold on a run's live artifacts; returns how many changed."""
    return index.set_hold(conn, run_id, hold=hold, actor=actor, reason=reason)
