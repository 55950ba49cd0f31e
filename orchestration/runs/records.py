"""Report run requests and their records in `control.report_runs`.

A request is validated before anything runs and hashed (the input hash) from its canonical
JSON, so the same request always has the same hash. The run record is the one place that
says what a run was asked to do and how it ended.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import os
import socket
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestration.catalog.templates import Template
from orchestration.db.warehouse import WarehouseError, dict_rows, json_param, validate_tenant_id

TRIGGERS = ("manual", "schedule", "correction", "retry")
FAILURE_CLASSES = (
    "query_failure",
    "source_unavailable",
    "validation_failed",
    "policy_violation",
    "format_error",
    "storage_failure",
    "delivery_failure",
    "timeout",
    "cancelled",
)


# Per failure class: whether a retry can help (it is then retried automatically) and what a
# data engineer should do.
TRANSIENT = frozenset({"source_unavailable", "storage_failure", "delivery_failure"})
GUIDANCE = {
    "query_failure": "permanent: a section query failed; fix the template SQL or the dbt model, then rerun",
    "source_unavailable": "transient: retried automatically with backoff; if it persists, check the warehouse and the loaders",
    "validation_failed": "permanent until the data changes: read the Gate B results, fix the data, then run a correction",
    "policy_violation": "permanent: the request is not allowed (approval, role, tenant); change the request, do not retry",
    "format_error": "permanent: a renderer failed on this data; report it with the run id",
    "storage_failure": "transient: retried automatically with backoff; if it persists, check space and permissions of the artifact store",
    "delivery_failure": "transient: retried automatically; check the channel's endpoint",
    "timeout": "permanent for this window size: narrow the window or raise the template's timeout_seconds",
    "cancelled": "cancelled on request: run it again if still wanted",
}
STAGES = ("queued", "starting", "freshness", "snapshot", "gate_b", "render", "publish", "done")


class RequestError(ValueError):
    """A run request that cannot run; the message says what to change."""


def month_window(period_key: str) -> tuple[dt.date, dt.date]:
    """'2026-10' or '2026-10-01' -> (2026-10-01, 2026-11-01)."""
    try:
        start = dt.date.fromisoformat(period_key[:7] + "-01")
    except ValueError as exc:
        raise RequestError(f"invalid period {period_key!r}: expected YYYY-MM") from exc
    last = calendar.monthrange(start.year, start.month)[1]
    return start, start + dt.timedelta(days=last)


PERIOD_DAYS = {"daily": 1, "weekly": 7}


def period_window(cadence: str, period_key: str) -> tuple[str, dt.date, dt.date]:
    """(canonical period key, start, end exclusive) of one period of a cadence.

    Monthly keys are 'YYYY-MM' (or the month's first day, as Dagster's partitions name it);
    weekly and daily keys are the period's first day.
    """
    if cadence == "monthly":
        start, end = month_window(period_key)
        return start.strftime("%Y-%m"), start, end
    try:
        start = dt.date.fromisoformat(period_key)
    except ValueError as exc:
        raise RequestError(f"invalid {cadence} period {period_key!r}: expected YYYY-MM-DD") from exc
    return start.isoformat(), start, start + dt.timedelta(days=PERIOD_DAYS[cadence])


def window_label(start: dt.date, end: dt.date) -> str:
    """How a report names its window: 'June 2026', 'Week of 22 Jun 2026', '3 Jun 2026', or the range."""
    last = end - dt.timedelta(days=1)
    if start.day == 1 and end == (start + dt.timedelta(days=32)).replace(day=1):
        return start.strftime("%B %Y")
    if (end - start).days == PERIOD_DAYS["weekly"] and start.weekday() == 0:
        return f"Week of {start.day} {start:%b %Y} ({start:%d %b} – {last:%d %b})"
    if (end - start).days == 1:
        return f"{start.day} {start:%b %Y}"
    return f"{start.isoformat()} – {last.isoformat()}"


def last_complete_month(today: dt.date | None = None) -> str:
    today = today or dt.datetime.now(dt.UTC).date()
    first = today.replace(day=1)
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


@dataclass(frozen=True)
class ReportRequest:
    template_key: str
    template_version: int
    tenant_id: str
    window_start: dt.date
    window_end: dt.date
    requester: str
    trigger: str = "manual"
    period_key: str | None = None
    formats: tuple[str, ...] = ()
    filters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_period(cls, template: Template, tenant_id: str, period_key: str, **kwargs: Any) -> ReportRequest:
        key, start, end = period_window(template.cadence, period_key)
        kwargs.setdefault("formats", template.formats)
        return cls(
            template_key=template.key,
            template_version=template.version,
            tenant_id=tenant_id,
            window_start=start,
            window_end=end,
            period_key=key,
            **kwargs,
        )

    def validate(self, template: Template) -> ReportRequest:
        if (self.template_key, self.template_version) != (template.key, template.version):
            raise RequestError(f"request is for {self.template_key} v{self.template_version}, not {template.label}")
        if not self.tenant_id or not str(self.tenant_id).strip():
            raise RequestError("a run needs a tenant: name exactly one")
        if isinstance(self.tenant_id, (list, tuple, set)) or any(c in str(self.tenant_id) for c in ",; "):
            raise RequestError(f"a run is for exactly one tenant; got {self.tenant_id!r}")
        try:
            validate_tenant_id(self.tenant_id)
        except WarehouseError as exc:
            raise RequestError(str(exc)) from exc
        if self.window_start >= self.window_end:
            raise RequestError(f"empty window: {self.window_start} is not before {self.window_end}")
        unknown = sorted(set(self.formats) - set(template.formats))
        if not self.formats or unknown:
            raise RequestError(
                f"formats {list(self.formats)} not offered by {template.label} (offers {list(template.formats)})"
            )
        self._check_filters(template)
        if self.trigger not in TRIGGERS:
            raise RequestError(f"unknown trigger {self.trigger!r}; expected one of {TRIGGERS}")
        if not self.requester.strip():
            raise RequestError("a run needs a requester")
        return self

    def _check_filters(self, template: Template) -> None:
        declared = {f.name: f for f in template.filters}
        unknown = sorted(set(self.filters) - set(declared))
        if unknown:
            offered = ", ".join(declared) or "none"
            raise RequestError(f"{template.label} has no filter {', '.join(unknown)} (its filters: {offered})")
        for name, value in self.filters.items():
            spec = declared[name]
            if spec.type == "enum" and value not in spec.values:
                raise RequestError(f"filter {name}={value!r}: expected one of {', '.join(spec.values)}")
            if spec.type == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
                raise RequestError(f"filter {name}={value!r}: expected an integer")
            if spec.type == "date":
                try:
                    dt.date.fromisoformat(str(value))
                except ValueError:
                    raise RequestError(f"filter {name}={value!r}: expected a date YYYY-MM-DD") from None
            if spec.type == "text" and not isinstance(value, str):
                raise RequestError(f"filter {name}={value!r}: expected text")

    def query_params(self, template: Template) -> dict[str, Any]:
        """The window and every declared filter (NULL when not given) for the section SQL."""
        return {"window_start": self.window_start, "window_end": self.window_end,
                **{f.name: self.filters.get(f.name) for f in template.filters}}

    def canonical(self) -> dict[str, Any]:
        """What the input hash covers: everything that decides the report's content and audience."""
        return {
            "template_key": self.template_key,
            "template_version": self.template_version,
            "tenant_id": self.tenant_id,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "filters": self.filters,
            "formats": sorted(self.formats),
            "requester": self.requester,
        }

    @property
    def input_hash(self) -> str:
        canonical = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["window_start"] = self.window_start.isoformat()
        data["window_end"] = self.window_end.isoformat()
        data["formats"] = list(self.formats)
        return data


def run_config_of(record: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The `report_run` job config that repeats a recorded run's contract: for the worker that
    executes it, or (with overrides) for a correction that supersedes it."""
    config = {
        "template": record["template_key"], "version": record["template_version"], "tenant": record["tenant_id"],
        "formats": list(record["formats"]), "requester": record["requester"], "trigger": record["trigger"],
        "supersedes": record["supersedes_run_id"],
        "filters": {k: str(v) for k, v in (record["request"].get("filters") or {}).items()},
    }
    if record["period_key"]:
        config["period"] = record["period_key"]
    else:
        config["date_from"] = str(record["window_start"])
        config["date_to"] = str(record["window_end"] - dt.timedelta(days=1))
    return {**config, **overrides}


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def create_run(conn, request: ReportRequest, *, dagster_run_id: str | None = None, state: str = "queued",
               supersedes: str | None = None, retry_of: str | None = None, attempt: int = 1,
               timeout_seconds: int | None = None, schedule_id: str | None = None,
               tick_at: dt.datetime | None = None) -> tuple[str, bool]:
    """Record a run; (run_id, True). While a run of the same input hash is queued or running,
    nothing is created and that run is returned: (its run_id, False)."""
    run_id = new_run_id()
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            insert into control.report_runs
                (run_id, dagster_run_id, template_key, template_version, tenant_id, period_key,
                 window_start, window_end, formats, requester, trigger, request, input_hash,
                 state, stage, supersedes_run_id, retry_of, attempt, timeout_seconds, schedule_id, tick_at)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'queued', %s, %s, %s, %s, %s, %s)
            on conflict (input_hash) where state in ('queued', 'running') do nothing
            returning run_id
            """,
            (
                run_id, dagster_run_id, request.template_key, request.template_version,
                request.tenant_id, request.period_key, request.window_start, request.window_end,
                list(request.formats), request.requester, request.trigger,
                json_param(request.as_json()), request.input_hash, state,
                supersedes, retry_of, attempt, timeout_seconds, schedule_id, tick_at,
            ),
        )
        if cur.fetchone():
            return run_id, True
        cur.execute("select run_id from control.report_runs where input_hash = %s and state in ('queued', 'running')",
                    (request.input_hash,))
        row = cur.fetchone()
    if row is None:  # the active run ended between the two statements: try again
        return create_run(conn, request, dagster_run_id=dagster_run_id, state=state, supersedes=supersedes,
                          retry_of=retry_of, attempt=attempt, timeout_seconds=timeout_seconds,
                          schedule_id=schedule_id, tick_at=tick_at)
    return row[0], False


def mark_running(conn, run_id: str, *, dagster_run_id: str | None = None) -> None:
    """queued -> running, in this process (its pid, so a cancel can reach it, and a heartbeat)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            """update control.report_runs
                  set state = 'running', stage = 'starting', started_at = coalesce(started_at, now()),
                      heartbeat_at = now(), worker_pid = %s, worker_host = %s,
                      dagster_run_id = coalesce(%s, dagster_run_id)
                where run_id = %s and state in ('queued', 'running')""",
            (os.getpid(), socket.gethostname(), dagster_run_id, run_id),
        )


def set_stage(conn, run_id: str, stage: str) -> dict[str, Any]:
    """Record progress (and a heartbeat); returns what the stage needs to know: cancel, deadline."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    with conn, conn.cursor() as cur:
        cur.execute(
            """update control.report_runs set stage = %s, heartbeat_at = now() where run_id = %s
               returning cancel_requested, started_at, timeout_seconds, now()""",
            (stage, run_id),
        )
        row = cur.fetchone()
    cancel, started, timeout, now = row
    return {"cancel_requested": cancel, "started_at": started, "timeout_seconds": timeout, "now": now}


def request_cancel(conn, run_id: str) -> dict[str, Any] | None:
    """Flag the run for cancellation; a queued run ends at once, a running one at its next check."""
    with conn, conn.cursor() as cur:
        cur.execute(
            """update control.report_runs set cancel_requested = coalesce(cancel_requested, now())
                where run_id = %s and state in ('queued', 'running')""",
            (run_id,),
        )
    finish_run(conn, run_id, "cancelled", failure_class="cancelled", diagnosis="cancelled before it started",
               only_from=("queued",))
    return get_run(conn, run_id)


def worker_alive(record: dict[str, Any]) -> bool | None:
    """True/False for a worker on this host; None when it runs elsewhere (cannot tell)."""
    if record.get("worker_host") != socket.gethostname() or not record.get("worker_pid"):
        return None
    try:
        os.kill(record["worker_pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def update_run(conn, run_id: str, **fields: Any) -> None:
    allowed = {
        "snapshot_tables", "row_counts", "gate_passed", "gate_summary", "artifact_location", "manifest_sha256",
        "snapshot_state", "degraded", "degraded_reason", "source_watermarks", "dagster_run_id", "superseded_by",
        "late_data_at",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    sets = ", ".join(f"{k} = %s" for k in fields)
    values = [json_param(v) if isinstance(v, (dict, list)) else v for v in fields.values()]
    with conn, conn.cursor() as cur:
        cur.execute(f"update control.report_runs set {sets} where run_id = %s", (*values, run_id))


def finish_run(conn, run_id: str, state: str, *, failure_class: str | None = None, diagnosis: str | None = None,
               only_from: tuple[str, ...] = ("queued", "running"), then=None) -> bool:
    """End a run: completed, or failed/cancelled with a classified reason and retry guidance.
    Ends are final: returns False when the run had already ended. `then(cur)`, when given, runs
    in the same transaction once the run has ended here (e.g. the artifact index rows)."""
    if state in ("failed", "cancelled") and failure_class not in FAILURE_CLASSES:
        raise ValueError(f"a {state} run needs a failure class from {FAILURE_CLASSES}")
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            update control.report_runs
               set state = %s, failure_class = %s, diagnosis = %s, retry_guidance = %s,
                   stage = case when %s = 'completed' then 'done' else stage end,
                   published_at = case when %s = 'completed' then now() end,
                   ended_at = now()
             where run_id = %s and state = any(%s)
            """,
            (state, failure_class if state != "completed" else None, diagnosis,
             GUIDANCE.get(failure_class) if state != "completed" else None,
             state, state, run_id, list(only_from)),
        )
        ended = cur.rowcount == 1
        if ended and then is not None:
            then(cur)
        return ended


def get_run(conn, run_id: str) -> dict[str, Any] | None:
    with conn, conn.cursor() as cur:
        cur.execute("select * from control.report_runs where run_id = %s", (run_id,))
        rows = dict_rows(cur)
    return rows[0] if rows else None


def run_for_dagster_run(conn, dagster_run_id: str, template_key: str) -> dict[str, Any] | None:
    with conn, conn.cursor() as cur:
        cur.execute(
            """select * from control.report_runs
                where dagster_run_id = %s and template_key = %s
                order by created_at desc limit 1""",
            (dagster_run_id, template_key),
        )
        rows = dict_rows(cur)
    return rows[0] if rows else None
