"""`nexus-reports artifacts`: the artifact index, retention dates and legal holds."""

from __future__ import annotations

import click

from orchestration.cli import params
from orchestration.cli.base import Group
from orchestration.cli.tables import Column, echo_table
from orchestration.db import warehouse


@click.group("artifacts", cls=Group,
             help="Published artifacts: the index (control.artifacts), retention dates and legal holds.")
def group() -> None:
    pass


@group.command("list", help="Indexed artifacts, newest first: store key, size, sensitivity, retention, hold.")
@params.tenant(help_text="only this tenant's artifacts")
@click.option("--run", "run_id", default=None, help="only this run's artifacts")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000), help="at most this many rows")
def list_cmd(tenant: str | None, run_id: str | None, limit: int) -> None:
    from orchestration.services import artifacts

    with warehouse.connection() as conn:
        rows = artifacts.list_artifacts(conn, tenant_id=tenant, run_id=run_id, limit=limit)
    echo_table(
        [Column("run"), Column("tenant"), Column("template"), Column("variant"), Column("format"),
         Column("bytes", right=True), Column("sensitivity"), Column("retain until"), Column("state"), Column("key")],
        [(a.run_id, a.tenant_id, f"{a.template_key} v{a.template_version}", a.variant, a.fmt, f"{a.bytes:,}",
          a.sensitivity, a.retention_until, a.state, f"{a.store}:{a.storage_key}") for a in rows],
        click.echo, empty="no artifacts")


def _hold_change(change: str, help_text: str):
    @group.command(change, help=help_text)
    @click.argument("run_id")
    @params.actor("a platform admin, or the tenant admin of the run's tenant")
    @params.reason()
    def command(run_id: str, actor: str, reason: str) -> None:
        from orchestration.services import artifacts

        with warehouse.connection() as conn:
            changed = artifacts.set_hold(conn, run_id, hold=change == "hold", actor=actor, reason=reason)
        what = "on legal hold" if change == "hold" else "released from legal hold"
        click.echo(f"run {run_id}: {changed} artifacts {what} by {actor}: {reason}")

    return command


hold_cmd = _hold_change("hold", "Place a legal hold on a run's artifacts: retention keeps them until released "
                                "(platform admin, or the tenant admin of the run's tenant).")
release_cmd = _hold_change("release", "Release a legal hold: the artifacts expire at their retention date again.")
