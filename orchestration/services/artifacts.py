"""Artifact use cases: list the index, place or release a legal hold, the retention sweep.
Typed in and out; each owns its transaction (the sweep: one per run)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from orchestration.artifacts import index, retention
from orchestration.artifacts.retention import Sweep
from orchestration.db.rows import from_row
from orchestration.runs import records


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
        return from_row(cls, row, fmt=row["format"])

    @property
    def state(self) -> str:
        if self.deleted_at:
            return f"deleted {self.deleted_at:%Y-%m-%d}"
        return "LEGAL HOLD" if self.legal_hold else "live"


def list_artifacts(conn, *, tenant_id: str | None = None, run_id: str | None = None, limit: int = 200) -> list[ArtifactEntry]:
    """Indexed artifacts, newest first (deleted ones included, marked)."""
    with conn:
        return [ArtifactEntry.of(r) for r in index.list_artifacts(conn, tenant_id=tenant_id, run_id=run_id, limit=limit)]


def set_hold(conn, run_id: str, *, hold: bool, actor: str, reason: str) -> int:
    """Place or release a legal hold on a run's live artifacts; returns how many changed."""
    with conn:
        return index.set_hold(conn, run_id, hold=hold, actor=actor, reason=reason)


def sweep(conn, now: dt.datetime | None = None, *, run_ids: list[str] | None = None) -> Sweep:
    """Purge every completed run past retention (or only those of `run_ids` that are): one
    transaction per run, so a run purged from its store is marked expired before the next."""
    now = now or dt.datetime.now(dt.UTC)
    result = Sweep()
    with conn:
        candidates = records.completed_runs(conn, run_ids)
    for record in candidates:
        with conn:
            retention.purge_if_due(conn, record, now, result)
    return result


def expire(conn, now: dt.datetime | None = None, *, run_ids: list[str] | None = None) -> list[str]:
    """Expire every completed run past retention (or only those of `run_ids` that are);
    returns their run ids."""
    return sweep(conn, now, run_ids=run_ids).expired
