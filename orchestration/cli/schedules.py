"""`nexus-reports schedules`: a template for a tenant, a report definition, or an export pipeline, on
a cron in a time zone or every interval, run by a sensor."""

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


@group.command("create", help="Schedule an approved template version for a tenant, a report definition "
               "(--definition rdef_...) or an export pipeline (--pipeline pipe_...), on a cron in a time zone or "
               "every ISO-8601 interval (--every PT6H).")
@click.argument("template", required=False)
@click.option("--definition", default=None, help="a report definition (rdef_...) instead of a template: its active "
              "version runs at each tick, re-validated then; the tenant is the definition's")
@click.option("--pipeline", default=None, help="an export pipeline (pipe_...) instead of a template: one batch of its "
              "active version per tick, to its own destination in its own format; the tenant is the pipeline's")
@click.option("--tenant", default=None, help="the tenant the reports are for (templates)")
@click.option("--cron", default=None, help='5-field cron expression, e.g. "0 6 * * 1"')
@click.option("--every", default=None, help="an ISO-8601 interval instead of a cron, e.g. PT6H, P1D, P1W")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the cron, e.g. Europe/Berlin")
@click.option("--version", type=params.VERSION, default=None, help="template version [default: the newest approved]")
@click.option("--format", "formats", default=None,
              help="comma-separated formats [default: all the template offers; a definition: csv (or xlsx)]")
@click.option("--recipient", "recipients", multiple=True, help="a recipient (repeat for several)")
@click.option("--allow-overlap", is_flag=True, help="start a tick even while the previous run is active")
@click.option("--catch-up", type=click.Choice(["skip", "latest"]), default="skip", show_default=True,
              help="after downtime: skip missed ticks, or run the latest one")
@params.actor("the schedule's owner")
@params.reason()
def create_cmd(template: str | None, definition: str | None, pipeline: str | None, tenant: str | None,
               cron: str | None, every: str | None, timezone: str, version: int | None, formats: str | None,
               recipients, allow_overlap: bool, catch_up: str, actor: str, reason: str) -> None:
    from orchestration.services import definition_schedules, schedules

    if sum(bool(t) for t in (template, definition, pipeline)) != 1:
        raise click.UsageError("give one of TEMPLATE, --definition rdef_... or --pipeline pipe_...")
    if bool(cron) == bool(every):
        raise click.UsageError("give either --cron or --every")
    chosen = tuple(f.strip() for f in formats.split(",") if f.strip()) if formats else ()
    bootstrap.ready()
    with warehouse.connection() as conn:
        if pipeline:
            if version is not None or chosen or recipients or tenant:
                raise click.UsageError("a pipeline schedule runs the pipeline's active version, to its destination "
                                       "in its format: leave out --version, --format, --recipient and --tenant")
            new = schedules.NewPipelineSchedule(pipeline_id=pipeline, schedule=cron or every, timezone=timezone,
                                                reason=reason, allow_overlap=allow_overlap, catch_up=catch_up)
            s = schedules.create_for_pipeline(conn, definition_schedules.as_principal(conn, actor), new)
        elif definition:
            if version is not None or len(chosen) > 1:
                raise click.UsageError("a definition schedule runs the active version, in one format")
            new = schedules.NewDefinitionSchedule(
                definition_id=definition, schedule=cron or every, timezone=timezone, fmt=chosen[0] if chosen else "csv",
                recipients=tuple(recipients), reason=reason, allow_overlap=allow_overlap, catch_up=catch_up)
            s = schedules.create_for_definition(conn, definition_schedules.as_principal(conn, actor), new)
        else:
            if not tenant:
                raise click.UsageError("a template schedule needs --tenant")
            new = schedules.NewSchedule(
                template_key=template, tenant_id=tenant, cron=cron, every=every, timezone=timezone, version=version,
                formats=chosen, recipients=tuple(recipients), allow_overlap=allow_overlap, catch_up=catch_up,
                actor=actor, reason=reason)
            s = schedules.create(conn, new)
    timing = f"every {s.every}" if s.every else f"at '{s.cron}' {s.timezone}"
    click.echo(f"schedule {s.schedule_id}: {s.label} for {s.tenant_id} "
               f"{timing}, formats {','.join(s.formats)}; {s.state}, next run {s.next_run_at:%Y-%m-%d %H:%M %Z}")


@group.command("list", help="Schedules with their state and last tick.")
@params.tenant(help_text="only this tenant's schedules")
def list_cmd(tenant: str | None) -> None:
    from orchestration.services import schedules

    with warehouse.connection() as conn:
        rows = schedules.list_schedules(conn, tenant_id=tenant)
    echo_table([Column("id", right=True), Column("target"), Column("tenant"), Column("cron / interval"),
                Column("time zone"), Column("state"), Column("catch-up"), Column("last tick"), Column("next run")],
               [(s.schedule_id, s.label, s.tenant_id, s.expression, s.timezone, s.state, s.catch_up, s.last_tick_at,
                 s.next_run_at) for s in rows],
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
