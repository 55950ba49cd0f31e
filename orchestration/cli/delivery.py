"""`nexus-reports delivery`: distribution approvals (Gate C), e-mail allow-lists, the outbox."""

from __future__ import annotations

import click

from orchestration.cli import params
from orchestration.cli.base import Group
from orchestration.cli.tables import Column, echo_table
from orchestration.db import warehouse


@click.group("delivery", cls=Group, help="Report delivery: distribution approvals (Gate C), e-mail allow-lists, "
             "outbox status and retries.")
def group() -> None:
    pass


def _split(values) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@group.command("approve", help="Approve the distribution of a schedule (SCHEDULE_ID) or of an export pipeline "
               "(--pipeline): exactly these recipients over these channels. Adding a recipient or a channel later "
               "voids the approval.")
@click.argument("schedule_id", type=params.ID_NUMBER, required=False)
@click.option("--pipeline", "pipeline_id", metavar="PIPELINE_ID",
              help="approve an export pipeline's destination instead of a schedule's recipients")
@params.actor("the approver (approver role, not the schedule's or pipeline's owner)")
@click.option("--recipients", "recipients", multiple=True, required=True,
              help="kind:address[;external][;principal=ID], comma-separated or repeated")
@click.option("--channels", "channels", multiple=True, required=True, help="email, webhook, bucket (comma-separated)")
def approve_cmd(schedule_id, pipeline_id, actor, recipients, channels) -> None:
    from orchestration.services import delivery

    if (schedule_id is None) == (pipeline_id is None):
        raise click.UsageError("give either a SCHEDULE_ID or --pipeline PIPELINE_ID")
    with warehouse.connection() as conn:
        if pipeline_id:
            approval_id = delivery.approve_pipeline(conn, pipeline_id, approver=actor, recipients=_split(recipients),
                                                    channels=_split(channels))
        else:
            approval_id = delivery.approve(conn, schedule_id, approver=actor, recipients=_split(recipients),
                                           channels=_split(channels))
    click.echo(f"approval {approval_id} recorded for {f'pipeline {pipeline_id}' if pipeline_id else f'schedule {schedule_id}'}")


@group.command("allow-domain", help="Allow a tenant's reports to be e-mailed to addresses in DOMAIN.")
@click.argument("tenant", type=params.TENANT)
@click.argument("domain")
@params.actor("a tenant admin of TENANT, or a platform admin")
def allow_domain_cmd(tenant, domain, actor) -> None:
    from orchestration.services import delivery

    with warehouse.connection() as conn:
        domain = delivery.allow_domain(conn, tenant, domain, actor=actor)
    click.echo(f"{tenant}: e-mail to @{domain} allowed")


@group.command("add-webhook", help="Register (or rotate the secret of) a tenant's webhook endpoint; "
               "prints the signing secret (Standard Webhooks, whsec_...) once.")
@click.argument("tenant", type=params.TENANT)
@click.argument("url")
@params.actor("a tenant admin of TENANT, or a platform admin")
def add_webhook_cmd(tenant, url, actor) -> None:
    from orchestration.services import delivery

    with warehouse.connection() as conn:
        secret = delivery.register_webhook(conn, tenant, url, actor=actor)
    click.echo(f"{tenant}: webhook {url} registered; signing secret (shown once): {secret}")


@group.command("status", help="Deliveries per channel and status, and each delivery (of one run with --run).")
@click.option("--run", "run_id", default=None, help="only this run's deliveries")
def status_cmd(run_id) -> None:
    from orchestration.services import delivery

    with warehouse.connection() as conn:
        box = delivery.outbox(conn, run_id)
    if not box.deliveries:
        click.echo("no deliveries")
        return
    for channel, by_status in sorted(box.counts.items()):
        click.echo(f"{channel}: " + ", ".join(f"{s} {n}" for s, n in sorted(by_status.items())))
    echo_table([Column("id", right=True), Column("run"), Column("channel"), Column("address"), Column("status"),
                Column("attempts", right=True), Column("next attempt"), Column("last error")],
               [(d.delivery_id, d.run_id, d.channel, d.address, d.status, d.attempts,
                 d.next_attempt_at if d.waiting else None, d.last_error) for d in box.deliveries],
               click.echo)


@group.command("retry", help="Send failed deliveries again now (only those not sent; of one run with --run).")
@click.option("--run", "run_id", default=None, help="only this run's deliveries")
@click.option("--as", "actor", default=None, help="who asks [default: the OS user]")
def retry_cmd(run_id, actor) -> None:
    import getpass

    from orchestration.services import delivery

    with warehouse.connection() as conn:
        attempts = delivery.retry(conn, run_id, actor=actor or f"os:{getpass.getuser()}")
    if not attempts:
        click.echo("nothing to retry")
    for a in attempts:
        click.echo(f"#{a.delivery_id} {a.channel}:{a.address}: {a.status}" + (f" ({a.error})" if a.error else ""))
