"""Runtime schedule use cases: create, list, pause, resume, archive, evaluate. Typed in and out.

The schedule store (schedules/store.py) validates, authorizes and audits each change in the
transaction these functions own; these are the entry points the adapters call, returning
`Schedule` records, not rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from orchestration.access import tenants
from orchestration.db.rows import from_row
from orchestration.schedules import evaluation, store
from orchestration.schedules.evaluation import ON_TIME, ActiveRunLookup, Evaluation, PeriodFor


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
        return from_row(cls, row, formats=tuple(row["formats"] or ()), recipients=tuple(row["recipients"] or ()))


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
    with conn:
        schedule_id = store.create(
            conn, new.template_key, tenant_id=new.tenant_id, cron=new.cron, timezone=new.timezone,
            version=new.version, formats=list(new.formats) or None, recipients=new.recipients,
            allow_overlap=new.allow_overlap, catch_up=new.catch_up, actor=new.actor, reason=new.reason)
        return Schedule.of(store.get(conn, schedule_id))


def list_schedules(conn, *, tenant_id: str | None = None, states: Iterable[str] | None = None) -> list[Schedule]:
    with conn:
        return [Schedule.of(r) for r in store.list_schedules(conn, tenant_id=tenant_id, states=states)]


def change(conn, schedule_id: int, change: str, *, actor: str, reason: str) -> Schedule:
    """pause, resume or archive."""
    if change not in ("pause", "resume", "archive"):
        raise ValueError(f"unknown schedule change {change!r}")
    with conn:
        return Schedule.of(getattr(store, change)(conn, schedule_id, actor=actor, reason=reason))


def evaluate(conn, now: dt.datetime, active_run_lookup: ActiveRunLookup, *,
             period_for: PeriodFor | None = None, on_time: dt.timedelta = ON_TIME) -> Evaluation:
    """Record every due tick of every active schedule, and say which runs to request: one
    transaction per schedule, so a tick recorded is committed with its audit row before the next
    schedule is looked at (the Dagster sensor calls this every 30 s)."""
    now = now.astimezone(dt.UTC)
    result = Evaluation()
    with conn:
        known_tenants = tenants.list_tenant_ids(conn)
        schedules = store.list_schedules(conn, states=["active"])
    options = {"on_time": on_time} | ({"period_for": period_for} if period_for else {})
    for schedule in schedules:
        with conn:
            evaluation.evaluate_schedule(conn, schedule, now, active_run_lookup, known_tenants, result, **options)
    return result
