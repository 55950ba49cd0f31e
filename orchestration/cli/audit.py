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
