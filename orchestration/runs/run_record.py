"""What a run is: its record (one row of the run records table, typed), its origin, its states.

No SQL here: runs/records.py, the only code with SQL on run records, reads the rows into these.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestration.db.rows import from_row
from orchestration.runs.request import ReportRequest

STAGES = ("queued", "starting", "freshness", "snapshot", "gate_b", "render", "publish", "done")
END_STATES = ("completed", "failed", "cancelled", "expired")
ACTIVE_STATES = ("queued", "running")


@dataclass(frozen=True)
class RunRecord:
    """One run record, as runs/records.py reads it."""

    run_id: str
    template_key: str
    template_version: int
    tenant_id: str
    window_start: dt.date
    window_end: dt.date
    formats: tuple[str, ...]
    requester: str
    trigger: str
    request: dict[str, Any]
    input_hash: str
    state: str
    created_at: dt.datetime
    period_key: str | None = None
    dagster_run_id: str | None = None
    failure_class: str | None = None
    diagnosis: str | None = None
    retry_guidance: str | None = None
    stage: str = "queued"
    snapshot_tables: dict[str, str] = field(default_factory=dict)
    snapshot_state: str = "none"
    row_counts: dict[str, int] = field(default_factory=dict)
    gate_passed: bool | None = None
    gate_summary: dict[str, Any] | None = None
    artifact_location: str | None = None
    manifest_sha256: str | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    published_at: dt.datetime | None = None
    retry_of: str | None = None
    attempt: int = 1
    supersedes_run_id: str | None = None
    superseded_by: str | None = None
    degraded: bool = False
    degraded_reason: str | None = None
    source_watermarks: dict[str, Any] = field(default_factory=dict)
    cancel_requested: dt.datetime | None = None
    worker_pid: int | None = None
    worker_host: str | None = None
    heartbeat_at: dt.datetime | None = None
    timeout_seconds: int | None = None
    schedule_id: str | None = None
    tick_at: dt.datetime | None = None
    late_data_at: dt.datetime | None = None
    correlation_id: str | None = None
    # every part (format and variant) that failed to render or to read back: a partial failure names them all
    failed_parts: list[dict[str, Any]] = field(default_factory=list)
    template: dict[str, Any] | None = None  # a report definition's compiled template (catalog.definition_template)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunRecord:
        return from_row(cls, row, formats=tuple(row.get("formats") or ()))

    @property
    def period(self) -> str:
        """The period key, or '<start>_<end>' for an ad-hoc window (how run keys name it)."""
        return self.period_key or f"{self.window_start}_{self.window_end}"

    @property
    def trace_id(self) -> str:
        """The correlation id its audit rows carry: the request's that caused it, else its own run id."""
        return self.correlation_id or self.run_id

    @property
    def ended(self) -> bool:
        return self.state in END_STATES

    def request_object(self) -> ReportRequest:
        return ReportRequest.from_json(self.request)


@dataclass(frozen=True)
class RunOrigin:
    """Where a run comes from, beside its request: what the run record notes about its launch.

    run_id: a run admitted earlier (the CLI admits, a worker executes); schedule_id and
    expected_tenant: the runtime schedule that vouches for the tenant; tick_at: the schedule tick
    (for the lag); supersedes: the run a correction replaces; retry_of/attempt: automatic retries.
    """

    dagster_run_id: str | None = None
    run_id: str | None = None
    schedule_id: str | None = None
    expected_tenant: str | None = None
    tick_at: dt.datetime | None = None
    supersedes: str | None = None
    retry_of: str | None = None
    attempt: int = 1
    correlation_id: str | None = None

    def retried(self, failed_run_id: str) -> RunOrigin:
        return dataclasses.replace(self, run_id=None, retry_of=failed_run_id, attempt=self.attempt + 1)


def worker_alive(record: RunRecord) -> bool | None:
    """True/False for a worker on this host; None when it runs elsewhere (cannot tell)."""
    if record.worker_host != socket.gethostname() or not record.worker_pid:
        return None
    try:
        os.kill(record.worker_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(record.worker_pid)


def _zombie(pid: int) -> bool:
    """An exited child its parent has not waited for yet (the API server spawned it) still answers
    kill(pid, 0); /proc says it is dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc here, or gone just now: kill() said it was there
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def run_config_of(record: RunRecord, **overrides: Any) -> dict[str, Any]:
    """The `report_run` job config that repeats a recorded run's contract: for the worker that
    executes it, or (with overrides) for a correction that supersedes it."""
    config = {
        "template": record.template_key, "version": record.template_version, "tenant": record.tenant_id,
        "formats": list(record.formats), "requester": record.requester, "trigger": record.trigger,
        "supersedes": record.supersedes_run_id,
        "filters": {k: str(v) for k, v in (record.request.get("filters") or {}).items()},
    }
    if record.period_key:
        config["period"] = record.period_key
    else:
        config["date_from"] = str(record.window_start)
        config["date_to"] = str(record.window_end - dt.timedelta(days=1))
    return {**config, **overrides}
