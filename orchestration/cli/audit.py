"""`nexus-reports audit`: the tamper-evident audit log."""

from __future__ import annotations

import click

from orchestration.cli import params
from orchestration.cli.base import Group
from orchestration.cli.errors import UserError
from orchestration.cli.tables import Column, echo_table
from orchestration.db import warehouse


@click.group("audit", cls=Group, help="The tamper-evident audit log: verify its hash chain, read its newest rows.")
def group() -> None:
    pass


@group.command("verify", help="Check the hash chain; names the first broken row.")
def verify_cmd() -> None:
    from orchestration.services import audit

    with warehouse.connection() as conn:
        result = audit.verify(conn)
    if not result.ok:
        raise UserError(f"audit chain broken at row {result.first_broken_seq}: {result.problem}")
    click.echo(f"audit chain intact: {result.rows} rows")


@group.command("tail", help="The newest audit rows, oldest first.")
@click.option("-n", "limit", default=20, show_default=True, type=params.ROWS, help="how many rows")
def tail_cmd(limit: int) -> None:
    from orchestration.services import audit

    with warehouse.connection() as conn:
        rows = audit.tail(conn, limit)
    echo_table([Column("seq", right=True), Column("at"), Column("actor"), Column("tenant"), Column("action"),
                Column("outcome"), Column("target")],
               [(e.seq, e.at, e.actor, e.tenant_id, e.action, e.outcome, e.target) for e in rows],
               click.echo, empty="the audit log is empty")


def _summary(details: dict) -> str:
    """The few details that say what a row was: status and time of a request, a run's outcome."""
    keys = ("status", "ms", "reason", "failure_class", "total_seconds", "met", "expectations", "format", "new",
            "http_status", "run_id")
    return ", ".join(f"{k}={details[k]}" for k in keys if details.get(k) is not None)


@group.command("trace", help="Everything one request caused, in order: request, validation, run, Gate B, publish, "
                             "deliveries, downloads, with times and elapsed milliseconds.")
@click.argument("correlation_id")
@params.actor("an auditor of the tenant, or a platform admin")
def trace_cmd(correlation_id: str, actor: str) -> None:
    from orchestration.services import audit

    with warehouse.connection() as conn:
        found = audit.trace(conn, actor, correlation_id)
    runs = f"; runs {', '.join(found.run_ids)}" if found.run_ids else ""
    click.echo(f"trace {found.correlation_id}: {len(found.events)} rows over {found.elapsed_ms:,.1f} ms{runs}")
    echo_table([Column("seq", right=True), Column("at"), Column("+ms", right=True), Column("step"), Column("action"),
                Column("outcome"), Column("actor"), Column("target"), Column("details")],
               [(e.row.seq, e.row.at.isoformat(timespec="milliseconds"), f"{e.elapsed_ms:,.1f}", e.step, e.row.action,
                 e.row.outcome, e.row.actor, e.row.target, _summary(e.row.details)) for e in found.events],
               click.echo)
