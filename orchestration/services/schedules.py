"""Runtime schedule use cases: create, list, pause, resume, archive. Typed in and out.

The schedule store (schedules.runtime) validates, authorizes, audits and commits each change;
these are the entry points the adapters call, returning `Schedule` records, not rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orchestration.schedules import runtime


@dataclass(frozen=True)
class Schedule:
    schedule_id: int
    template_key: str
    template_version: int
    tenant_id: str
    cron: str
    timezone: str
    state: str
    catch_up: str
    formats: tuple[str, ...]
    recipients: tuple[str, ...]
    allow_overlap: bool
    owner: str
    last_tick_at: dt.datetime | None = None

    @property
    def label(self) -> str:
        return f"{self.template_key} v{self.template_version}"

    @classmethod
    def of(cls, row: dict[str, Any]) -> Schedule:
        return cls(row["schedule_id"], row["template_key"], row["template_version"], row["tenant_id"], row["cron"],
                   row["timezone"], row["state"], row["catch_up"], tuple(row["formats"] or ()),
                   tuple(row["recipients"] or ()), row["allow_overlap"], row["owner"], row.get("last_tick_at"))


@dataclass(frozen=True)
class NewSchedule:
    template_key: str
    tenant_id: str
    cron: str
    timezone: str
    actor: str
    reason: str
    version: int | None = None
    formats: tuple[str, ...] = ()  # empty: all the template offers
    recipients: tuple[str, ...] = ()
    allow_overlap: bool = False
    catch_up: str = "skip"


def create(conn, new: NewSchedule) -> Schedule:
    schedule_id = runtime.create(
        conn, new.template_key, tenant_id=new.tenant_id, cron=new.cron, timezone=new.timezone, version=new.version,
        formats=list(new.formats) or None, recipients=new.recipients, allow_overlap=new.allow_overlap,
        catch_up=new.catch_up, actor=new.actor, reason=new.reason)
    with conn:
        return Schedule.of(runtime.get(conn, schedule_id))


def list_schedules(conn, *, tenant_id: str | None = None, states: Iterable[str] | None = None) -> list[Schedule]:
    with conn:
        return [Schedule.of(r) for r in runtime.list_schedules(conn, tenant_id=tenant_id, states=states)]


def change(conn, schedule_id: int, change: str, *, actor: str, reason: str) -> Schedule:
    """pause, resume or archive."""
    if change not in ("pause", "resume", "archive"):
        raise ValueError(f"unknown schedule change {change!r}")
    return Schedule.of(getattr(runtime, change)(conn, schedule_id, actor=actor, reason=reason))
