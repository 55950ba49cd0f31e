"""Ad-hoc runs from the command line: build the request, admit it, execute it through Dagster's
`report_run` job in a worker process, and follow its progress.

The worker is a child process (`nexus-reports runs execute RUN`), so the CLI can return at
once or follow with --wait, and a cancel reaches the worker by its pid. The run is recorded in
the Dagster instance like any other (the UI shows it with its logs).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestration.access import audit, policy
from orchestration.catalog.templates import Template
from orchestration.db.warehouse import dict_rows
from orchestration.governance import lifecycle
from orchestration.runs import engine, records
from orchestration.runs.records import ReportRequest, RequestError

END_STATES = ("completed", "failed", "cancelled", "expired")


def resolve_template(conn, key: str, version: int | None, tenant_id: str) -> Template:
    """The approved (or deprecated) version to run: the given one, or the newest runnable one
    this tenant may see. Its content comes from the control schema, as approved."""
    with conn, conn.cursor() as cur:
        cur.execute(
            """select version from control.template_versions
                where template_key = %s and (owner_tenant is null or owner_tenant = %s)
                  and (%s::int is null or version = %s) and state in ('approved', 'deprecated')
                order by (state = 'approved') desc, version desc limit 1""",
            (key, tenant_id, version, version),
        )
        row = cur.fetchone()
    if row is None:
        wanted = f"{key} v{version}" if version else key
        raise RequestError(f"no approved version of {wanted} is available to tenant {tenant_id}")
    template, _ = lifecycle.load_version(conn, key, row[0], tenant_id=tenant_id)
    return template


def parse_filters(template: Template, pairs: list[str] | dict[str, Any]) -> dict[str, Any]:
    """'k=v' strings (CLI) or a dict of strings (Launchpad) -> typed filter values."""
    raw = dict(p.split("=", 1) if "=" in p else (p, None) for p in pairs) if isinstance(pairs, list) else dict(pairs)
    declared = {f.name: f for f in template.filters}
    typed = {}
    for name, value in raw.items():
        if value is None:
            raise RequestError(f"filter {name!r}: expected name=value")
        spec = declared.get(name)
        if spec is not None and spec.type == "integer":
            try:
                value = int(value)
            except ValueError:
                raise RequestError(f"filter {name}={value!r}: expected an integer") from None
        typed[name] = value
    return typed


def build_request(template: Template, *, tenant: str, requester: str, period: str | None = None,
                  date_from: str | None = None, date_to: str | None = None, filters: dict[str, Any] | None = None,
                  formats: list[str] | None = None, trigger: str = "manual") -> ReportRequest:
    """A request for a period of the template's cadence, or for any from/to (both inclusive)."""
    if bool(period) == bool(date_from or date_to):
        raise RequestError("give either --period or --from and --to")
    kwargs = dict(requester=requester, trigger=trigger, filters=filters or {},
                  formats=tuple(formats) if formats else template.formats)
    if period:
        return ReportRequest.for_period(template, tenant, period, **kwargs)
    if not (date_from and date_to):
        raise RequestError("an ad-hoc window needs both --from and --to")
    try:
        start, last = dt.date.fromisoformat(date_from), dt.date.fromisoformat(date_to)
    except ValueError:
        raise RequestError(f"invalid dates {date_from!r}..{date_to!r}: expected YYYY-MM-DD") from None
    if last < start:
        raise RequestError(f"--to {last} is before --from {start}")
    return ReportRequest(template_key=template.key, template_version=template.version, tenant_id=tenant,
                         window_start=start, window_end=last + dt.timedelta(days=1), **kwargs)


def spawn_worker(run_id: str) -> subprocess.Popen:
    """Execute a queued run in a detached child process that outlives this command."""
    cli = Path(sys.executable).parent / "nexus-reports"
    log = open(os.devnull, "wb")
    return subprocess.Popen([str(cli), "runs", "execute", run_id], stdout=log, stderr=log,
                            start_new_session=True, env=os.environ.copy())


def follow(conn, run_id: str, echo: Callable[[str], None], *, poll: float = 0.3,
           timeout: float | None = None) -> dict[str, Any]:
    """Print each stage as the run reaches it; return the ended record."""
    seen = None
    started = time.monotonic()
    while True:
        record = records.get_run(conn, run_id)
        if record["stage"] != seen and record["state"] not in END_STATES:
            seen = record["stage"]
            echo(f"  {time.monotonic() - started:5.1f}s  {seen}")
        if record["state"] in END_STATES:
            return record
        if record["state"] == "running" and records.worker_alive(record) is False:
            engine.reap(conn)
        if timeout and time.monotonic() - started > timeout:
            return record
        time.sleep(poll)


def cancel(conn, run_id: str, *, actor: str) -> dict[str, Any]:
    """Cancel a queued or running run: the requester, or someone who may run it for its tenant."""
    record = records.get_run(conn, run_id)
    if record is None:
        raise RequestError(f"no run {run_id}")
    if actor != record["requester"]:
        policy.authorize(conn, actor, "run", target=f"cancel {run_id}", tenant_id=record["tenant_id"],
                         correlation_id=run_id)
    if record["state"] in END_STATES:
        raise RequestError(f"run {run_id} already ended: {record['state']}")
    record = records.request_cancel(conn, run_id)
    audit.record_now(conn, actor=actor, action="run.cancel_requested", target=run_id, outcome="allowed",
                     tenant_id=record["tenant_id"], correlation_id=run_id)
    if record["state"] == "running":
        if records.worker_alive(record):
            os.kill(record["worker_pid"], signal.SIGTERM)
        _terminate_in_dagster(record.get("dagster_run_id"))
    return record


def _terminate_in_dagster(dagster_run_id: str | None) -> None:
    """Runs the daemon launched are stopped through Dagster too (the UI's terminate)."""
    if not dagster_run_id:
        return
    try:
        import dagster as dg

        instance = dg.DagsterInstance.get()
        run = instance.get_run_by_id(dagster_run_id)
        if run is not None and not run.is_finished and instance.run_launcher.terminate(dagster_run_id):
            return
    except Exception:  # no instance here, or a launcher that cannot terminate: the flag still works
        return


def list_runs(conn, *, tenant_id: str | None = None, state: str | None = None, limit: int = 20) -> list[dict]:
    with conn, conn.cursor() as cur:
        cur.execute(
            """select run_id, template_key, template_version, tenant_id, period_key, window_start, window_end,
                      trigger, requester, state, stage, failure_class, attempt, created_at, started_at, ended_at,
                      superseded_by, supersedes_run_id, degraded
                 from control.report_runs
                where (%s::text is null or tenant_id = %s) and (%s::text is null or state = %s)
                order by created_at desc limit %s""",
            (tenant_id, tenant_id, state, state, limit),
        )
        return dict_rows(cur)


def chain(conn, run_id: str) -> list[dict[str, Any]]:
    """The run and every run it supersedes or is superseded by, oldest first; retries too."""
    with conn, conn.cursor() as cur:
        cur.execute(
            """with recursive up as (
                   select r.*, 0 as depth from control.report_runs r where run_id = %s
                   union all
                   select r.*, up.depth - 1 from control.report_runs r
                   join up on r.run_id = coalesce(up.supersedes_run_id, up.retry_of)
               ), down as (
                   select r.*, 0 as depth from control.report_runs r where run_id = %s
                   union all
                   select r.*, down.depth + 1 from control.report_runs r
                   join down on r.supersedes_run_id = down.run_id or r.retry_of = down.run_id
               )
               select distinct on (run_id) run_id, trigger, state, failure_class, attempt, supersedes_run_id,
                      superseded_by, retry_of, created_at, depth
               from (select * from up union all select * from down) c
               order by run_id""",
            (run_id, run_id),
        )
        rows = dict_rows(cur)
    return sorted(rows, key=lambda r: (r["depth"], r["created_at"]))
