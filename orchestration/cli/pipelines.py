"""`nexus-reports pipelines`: export pipelines (the Reporting API's /pipelines) from the host."""

from __future__ import annotations

import datetime as dt
import time

import click

from orchestration.cli import params
from orchestration.cli.base import Group
from orchestration.cli.errors import UserError
from orchestration.cli.tables import Column, echo_table
from orchestration.db import warehouse


@click.group("pipelines", cls=Group,
             help="Export pipelines: report definitions and templates of a tenant exported as one batch.")
def group() -> None:
    pass


@group.command("list", help="The pipelines the principal can see, with state and members.")
@params.actor("the principal whose tenants are listed")
def list_cmd(actor: str) -> None:
    from orchestration.services import pipelines

    with warehouse.connection() as conn:
        views, _ = pipelines.list_pipelines(conn, pipelines.operator(conn, actor), limit=pipelines.PAGE_MAX)
    echo_table([Column("id"), Column("name"), Column("tenant"), Column("state"), Column("version", right=True),
                Column("members"), Column("destination")],
               [(v.pipeline.pipeline_id, v.version.spec.pipeline_name, v.pipeline.tenant_id, v.pipeline.status,
                 v.version.version, ", ".join(v.version.spec.members), v.version.spec.destination.recipient(None).identity)
                for v in views],
               click.echo, empty="no pipelines")


def _echo_batch(batch) -> None:
    click.echo(f"pipeline run {batch.pipeline_run_id} of {batch.pipeline_id} v{batch.version}: {batch.status}")
    echo_table([Column("member"), Column("run"), Column("state"), Column("delivery"), Column("error")],
               [(m.member, m.run_id, m.state, m.delivery, m.error or m.delivery_detail.get("reason")
                 or m.delivery_detail.get("error")) for m in batch.members], click.echo, empty="no members")
    if batch.failed:
        click.echo("failed: " + ", ".join(m.member for m in batch.failed))


@group.command("show", help="One pipeline, its active version, and its latest batches.")
@click.argument("pipeline_id")
@params.actor("the principal who asks")
def show_cmd(pipeline_id: str, actor: str) -> None:
    from orchestration.services import pipeline_runs, pipelines

    with warehouse.connection() as conn:
        caller = pipelines.operator(conn, actor)
        view = pipelines.get_pipeline(conn, caller, pipeline_id)
        batches, _ = pipeline_runs.list_pipeline_runs(conn, caller, pipeline_id, limit=5)
    spec = view.version.spec
    click.echo(f"{view.pipeline.pipeline_id}: {spec.pipeline_name} ({view.pipeline.tenant_id}), {view.pipeline.status}, "
               f"version {view.version.version} (active: {view.pipeline.active_version or 'none'})")
    click.echo(f"members: {', '.join(spec.members)}; format {spec.format}; "
               f"to {spec.destination.recipient(None).identity}")
    for batch in batches:
        _echo_batch(batch)


@group.command("run", help="Run every member as one batch and deliver the published files once.")
@click.argument("pipeline_id")
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), default=None, help="first day (inclusive)")
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), default=None, help="last day (inclusive)")
@click.option("--idempotency-key", default=None, help="the same key returns the same batch")
@click.option("--wait", is_flag=True, help="wait until every member is settled")
@params.actor("the principal the member runs are for")
def run_cmd(pipeline_id: str, date_from: dt.datetime | None, date_to: dt.datetime | None,
            idempotency_key: str | None, wait: bool, actor: str) -> None:
    from pydantic import ValidationError

    from orchestration.catalog.definitions import RunParameters
    from orchestration.services import pipeline_runs, pipelines

    try:
        window = RunParameters(date_from=date_from.date() if date_from else None,
                               date_to=date_to.date() if date_to else None)
    except ValidationError as exc:
        raise UserError(exc.errors()[0]["msg"]) from None
    with warehouse.connection() as conn:
        batch, created = pipeline_runs.run_pipeline(conn, pipelines.operator(conn, actor), pipeline_id,
                                                    pipeline_runs.PipelineRunOrder(parameters=window),
                                                    idempotency_key=idempotency_key)
        if not created:
            click.echo(f"the same request is batch {batch.pipeline_run_id}")
        while wait and batch.status == "running":
            time.sleep(1)
            batch = pipeline_runs.settle(conn, batch.pipeline_run_id)
    _echo_batch(batch)
