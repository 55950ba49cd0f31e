"""`nexus-reports links`: expiring download links, one principal and one file each; revocable."""

from __future__ import annotations

import click

from orchestration.cli import params
from orchestration.cli.base import Group
from orchestration.cli.tables import Column, echo_table, when
from orchestration.db import warehouse
from orchestration.exports import formats


@click.group("links", cls=Group, help="Download links: one principal, one file of a run, expiring; "
             "revocable by link, run, template or tenant.")
def group() -> None:
    pass


def _max_expiry():
    from orchestration.services.links import MAX_EXPIRY

    return MAX_EXPIRY


@group.command("create", help="Create a link to one file of a completed run for one principal; prints its URL once.")
@click.argument("run_id")
@click.option("--format", "fmt", required=True, type=click.Choice(formats.NAMES), help="which file")
@click.option("--for", "principal_id", required=True, help="the principal who may download it")
@click.option("--variant", default="internal", show_default=True, help="internal, or external (redacted)")
@click.option("--expires-in", default=None, type=params.Duration(_max_expiry),
              help="e.g. 30m, 2h, 7d [default: the longest the template's sensitivity allows]")
@params.actor("who creates it (may download the file)")
def create_cmd(run_id, fmt, principal_id, variant, expires_in, actor) -> None:
    from orchestration.services import links

    with warehouse.connection() as conn:
        link = links.create(conn, links.NewLink(run_id, fmt, principal_id, actor, variant, expires_in))
    click.echo(f"link {link.link_id} for {link.principal_id}, expires {when(link.expires_at)}:")
    click.echo(link.url())


@group.command("list", help="Links with their status (active, expired, revoked); never their tokens.")
@params.tenant(help_text="only this tenant's links")
@click.option("--run", "run_id", default=None, help="only this run's links")
def list_cmd(tenant, run_id) -> None:
    from orchestration.services import links

    with warehouse.connection() as conn:
        rows = links.list_links(conn, tenant_id=tenant, run_id=run_id)
    echo_table(
        [Column("id", right=True), Column("run"), Column("template"), Column("fmt"), Column("tenant"), Column("for"),
         Column("expires"), Column("dl", right=True), Column("status")],
        [(r.link_id, r.run_id, r.template_key, r.format, r.tenant_id, r.principal_id, r.expires_at, r.downloads,
          r.status + (f" by {r.revoked_by}: {r.revoke_reason}" if r.revoked_at else "")) for r in rows],
        click.echo, empty="no links")


@group.command("revoke", help="Revoke one link, every link of a run, of a template (optionally of one tenant), or of a tenant.")
@click.option("--link", "link_id", type=params.ID_NUMBER, default=None, help="one link")
@click.option("--run", "run_id", default=None, help="every link of this run")
@click.option("--template", "template_key", default=None, help="every link of this template")
@params.tenant(help_text="every link of this tenant (with --template: that template's)")
@params.actor()
@params.reason()
def revoke_cmd(link_id, run_id, template_key, tenant, actor, reason) -> None:
    from orchestration.services import links

    with warehouse.connection() as conn:
        revoked = links.revoke(conn, links.Revocation(actor, reason, link_id, run_id, template_key, tenant))
    click.echo(f"revoked {len(revoked)} link(s)" + (f": {', '.join(map(str, revoked))}" if revoked else ""))
