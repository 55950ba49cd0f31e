"""`nexus-reports run` and `nexus-reports runs`: report runs, through services.runs (RunRecord)."""

from __future__ import annotations

import sys
import time

import click

from orchestration.cli import bootstrap, params
from orchestration.cli.base import Command, Group
from orchestration.cli.errors import UserError
from orchestration.cli.tables import Column, echo_table, when
from orchestration.db import warehouse

STATES = ["queued", "running", "completed", "failed", "cancelled", "expired"]


@click.command("run", cls=Command, help="Run a report now: one tenant, a period or --from/--to (inclusive), "
               "through Dagster's report_run job.")
@click.argument("template")
@click.option("--tenant", required=True, help="the tenant the report is for")
@click.option("--period", default=None, help="a period of the template's cadence: YYYY-MM, or a week's Monday YYYY-MM-DD")
@click.option("--from", "date_from", default=None, help="ad-hoc window start YYYY-MM-DD (inclusive)")
@click.option("--to", "date_to", default=None, help="ad-hoc window end YYYY-MM-DD (inclusive)")
@click.option("--filter", "filters", multiple=True, help="name=value, for a filter the template declares")
@click.option("--format", "formats", default=None, help="comma-separated subset of the template's formats")
@click.option("--version", type=params.VERSION, default=None, help="approved version [default: newest approved]")
@params.actor("the requesting principal")
@click.option("--wait", is_flag=True, help="follow the run to its end, with progress")
def run_cmd(template, tenant, period, date_from, date_to, filters, formats, version, actor, wait) -> None:
    # --tenant is not parsed as a TenantId here: services.runs refuses a malformed one and audits it.
    from orchestration.runs import worker
    from orchestration.runs.failures import AlreadyActive, RunFailed
    from orchestration.services import runs as run_service

    started = time.monotonic()  # what the user waits for: from here, not from the worker's start
    pairs = dict(f.split("=", 1) if "=" in f else (f, None) for f in filters)
    submission = run_service.RunSubmission(
        template_key=template, version=version, tenant_id=tenant, requester=actor, period=period,
        date_from=date_from, date_to=date_to, filters=pairs,
        formats=tuple(f.strip() for f in formats.split(",")) if formats else (),
    )
    bootstrap.ready()
    with warehouse.connection() as conn:
        try:
            run_id = run_service.submit_and_launch(conn, submission)
            record = run_service.show(conn, run_id).record
            click.echo(f"run {run_id} queued: {record.template_key} v{record.template_version} for {tenant}, "
                       f"{record.window_start}..{record.window_end}")
        except AlreadyActive as exc:
            run_id = exc.run_id
            click.echo(f"the same request is already active as run {run_id}; following it" if wait
                       else f"the same request is already active as run {run_id}")
        except RunFailed as exc:
            raise UserError(f"run {exc.run_id} refused ({exc.failure_class}): {exc.diagnosis}") from exc
        if not wait:
            click.echo(f"follow it with: nexus-reports runs show {run_id}")
            return
        record = worker.follow(conn, run_id, click.echo)
    _print_end(record, time.monotonic() - started)


def _print_end(record, waited: float) -> None:
    from orchestration.runs.stage_log import size
    from orchestration.services import runs as run_service

    if record.state == "completed":
        own = (record.ended_at - record.started_at).total_seconds()
        click.echo(f"completed in {waited:.1f}s (the run itself {own:.1f}s): {record.artifact_location}")
        echo_table([Column("file"), Column("format"), Column("variant"), Column("rows", right=True),
                    Column("size", right=True)],
                   [(f.name, f.fmt, f.variant, f"{f.rows:,}", size(f.size)) for f in run_service.published_files(record)],
                   click.echo)
        return
    raise UserError(f"run {record.run_id} {record.state} ({record.failure_class}): {record.diagnosis} "
                    f"[{record.retry_guidance}]")


@click.group("runs", cls=Group, help="Report runs: list, show, cancel.")
def group() -> None:
    pass


@group.command("list", help="The newest runs (read only: nothing is reaped or changed).")
@params.tenant(help_text="only this tenant's runs")
@click.option("--state", default=None, type=click.Choice(STATES), help="only runs in this state")
@click.option("-n", "limit", default=20, show_default=True, type=params.ROWS, help="how many runs")
def list_cmd(tenant, state, limit) -> None:
    from orchestration.services import runs as run_service

    with warehouse.connection() as conn:
        rows = run_service.list_runs(conn, tenant_id=tenant, state=state, limit=limit)
    echo_table(
        [Column("run"), Column("created"), Column("template"), Column("tenant"), Column("window"), Column("trigger"),
         Column("state")],
        [(r.run_id, r.created_at, f"{r.template_key} v{r.template_version}", r.tenant_id,
          r.period_key or f"{r.window_start}..{r.window_end}", r.trigger,
          shown_state(r) + (f" ({r.failure_class})" if r.failure_class else (" DEGRADED" if r.degraded else ""))
          + (f"  superseded by {r.superseded_by}" if r.superseded_by else "")) for r in rows],
        click.echo, empty="no runs")


def shown_state(record) -> str:
    """A request refused by policy (requester, membership, approval) reads as refused, not failed:
    nothing ran, and there is nothing to retry until the request or the grants change."""
    return "refused" if record.state == "failed" and record.failure_class == "policy_violation" else record.state


def _timing(record) -> str:
    duration = (record.ended_at - record.started_at).total_seconds() if record.ended_at and record.started_at else None
    return (f"created {when(record.created_at)}, started {when(record.started_at)}, ended {when(record.ended_at)}"
            + (f", {duration:.1f}s" if duration is not None else ""))


@group.command("show", help="One run: contract, state, stages, timings, files, and its chain of corrections and retries.")
@click.argument("run_id")
def show_cmd(run_id) -> None:
    from orchestration.services import runs as run_service

    with warehouse.connection() as conn:
        view = run_service.show(conn, run_id)
    record = view.record
    lines = [
        ("run", f"{record.run_id} (Dagster run {record.dagster_run_id or '-'})"),
        ("template", f"{record.template_key} v{record.template_version}"),
        ("tenant", record.tenant_id),
        ("window", f"{record.window_start} .. {record.window_end} (end exclusive)"),
        ("requester", f"{record.requester} ({record.trigger}, attempt {record.attempt})"),
        ("state", f"{shown_state(record)} at stage {record.stage}"
                  + (f", DEGRADED: {record.degraded_reason}" if record.degraded else "")),
        ("timing", _timing(record)),
        ("correlation", f"{record.trace_id} (nexus-reports audit trace {record.trace_id})"),
    ]
    if record.tick_at and record.started_at:
        lag = (record.started_at - record.tick_at).total_seconds()
        published = (f", start to published {(record.published_at - record.started_at).total_seconds():.1f}s"
                     if record.published_at else "")
        lines.append(("schedule lag", f"tick to start {lag:.1f}s{published}"))
    if record.row_counts:
        lines.append(("rows", f"{sum(record.row_counts.values()):,} ("
                              + ", ".join(f"{name} {n:,}" for name, n in record.row_counts.items()) + ")"))
    if view.sheets is not None:
        lines.append(("xlsx sheets", ", ".join(view.sheets)))
    if record.failure_class:
        lines += [("failure", f"{record.failure_class}: {record.diagnosis}"), ("guidance", record.retry_guidance)]
    lines += [("failed part", f"{p['part']}: {p['error']}") for p in record.failed_parts]
    if record.artifact_location:
        lines.append(("files", record.artifact_location))
    for label, value in lines:
        click.echo(f"{label:<13} {value}")
    if len(view.chain) > 1:
        click.echo("chain:")
        for link in view.chain:
            how = ("supersedes " + link.supersedes_run_id) if link.supersedes_run_id else (
                f"retry of {link.retry_of}" if link.retry_of else "original")
            mark = "*" if link.run_id == run_id else " "
            click.echo(f" {mark} {link.run_id}  {link.trigger:<10} {link.state:<10} {how}"
                       + (f", superseded by {link.superseded_by}" if link.superseded_by else ""))


@group.command("cancel", help="Cancel a queued or running run: nothing of it is published.")
@click.argument("run_id")
@params.actor("the requester, or someone who may run it for its tenant")
@click.option("--wait", is_flag=True, help="wait until the run has ended")
def cancel_cmd(run_id, actor, wait) -> None:
    from orchestration.runs import worker
    from orchestration.services import runs as run_service

    with warehouse.connection() as conn:
        record = run_service.cancel(conn, run_id, actor=actor)
        if wait and not record.ended:
            record = worker.follow(conn, run_id, lambda _: None, timeout=120)
    click.echo(f"run {run_id}: {record.state}" + (" (cancel requested)" if record.state == "running" else ""))


@group.command("execute", hidden=True, help="Execute an admitted run (the worker `run` starts).")
@click.argument("run_id")
def execute_cmd(run_id) -> None:
    import orchestration.definitions  # noqa: F401 - the run loads them anyway: loaded before the freeze
    from orchestration.defs.runs.execution import execute_admitted
    from orchestration.runs import worker

    worker.settle_imports()  # this process is a worker: what it imported lives as long as it does
    sys.exit(0 if execute_admitted(run_id) else 1)
