"""`nexus-reports schedules`: a template for a tenant on a cron in a time zone, run by a sensor."""

from __future__ import annotations

import click

from orchestration.cli import bootstrap, params
from orchestration.cli.base import Group
from orchestration.cli.tables import Column, echo_table
from orchestration.db import warehouse


@click.group("schedules", cls=Group,
             help="Runtime report schedules: a template for a tenant on a cron in a time zone, run by a sensor.")
def group() -> None:
    pass


@group.command("create", help="Schedule an approved template version for a tenant.")
@click.argument("template")
@click.option("--tenant", required=True, help="the tenant the reports are for")
@click.option("--cron", required=True, help='5-field cron expression, e.g. "0 6 * * 1"')
@click.option("--timezone", required=True, help="IANA time zone, e.g. Europe/Berlin")
@click.option("--version", type=params.VERSION, default=None, help="template version [default: the newest approved]")
@click.option("--format", "formats", default=None, help="comma-separated formats [default: all the template offers]")
@click.option("--recipient", "recipients", multiple=True, help="a recipient (repeat for several)")
@click.option("--allow-overlap", is_flag=True, help="start a tick even while the previous run is active")
@click.option("--catch-up", type=click.Choice(["skip", "latest"]), default="skip", show_default=True,
              help="after downtime: skip missed ticks, or run the latest one")
@params.actor("the schedule's owner")
@params.reason()
def create_cmd(template: str, tenant: str, cron: str, timezone: str, version: int | None, formats: str | None,
               recipients, allow_overlap: bool, catch_up: str, actor: str, reason: str) -> None:
    from orchestration.services import schedules

    bootstrap.ready()
    new = schedules.NewSchedule(
        template_key=template, tenant_id=tenant, cron=cron, timezone=timezone, version=version,
        formats=tuple(f.strip() for f in formats.split(",") if f.strip()) if formats else (),
        recipients=tuple(recipients), allow_overlap=allow_overlap, catch_up=catch_up, actor=actor, reason=reason)
    with warehouse.connection() as conn:
        s = schedules.create(conn, new)
    click.echo(f"schedule {s.schedule_id}: {s.label} for {s.tenant_id} "
               f"at '{s.cron}' {s.timezone}, formats {','.join(s.formats)}; {s.state}")


@group.command("list", help="Schedules with their state and last tick.")
@params.tenant(help_text="only this tenant's schedules")
def list_cmd(tenant: str | None) -> None:
    from orchestration.services import schedules

    with warehouse.connection() as conn:
        rows = schedules.list_schedules(conn, tenant_id=tenant)
    echo_table([Column("id", right=True), Column("template"), Column("tenant"), Column("cron"), Column("time zone"),
                Column("state"), Column("catch-up"), Column("last tick")],
               [(s.schedule_id, s.label, s.tenant_id, s.cron, s.timezone, s.state, s.catch_up, s.last_tick_at)
                for s in rows],
               click.echo, empty="no schedules")


def _change(change: str, help_text: str):
    @group.command(change, help=help_text)
    @click.argument("schedule_id", type=params.ID_NUMBER)
    @params.actor()
    @params.reason()
    def command(schedule_id: int, actor: str, reason: str) -> None:
        from orchestration.services import schedules

        with warehouse.connection() as conn:
            s = schedules.change(conn, schedule_id, change, actor=actor, reason=reason)
        click.echo(f"schedule {schedule_id} {s.state} by {actor}: {reason}")

    return command


pause_cmd = _change("pause", "Pause a schedule: its ticks do not run, and are not caught up on resume.")
resume_cmd = _change("resume", "Resume a paused schedule from now on.")
archive_cmd = _change("archive", "Archive a schedule for good: it never ticks again.")
