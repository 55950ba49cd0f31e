"""`nexus-reports templates`: versions, lifecycle (draft -> approved -> deprecated) and Gate A."""

from __future__ import annotations

import click

from orchestration.cli import bootstrap, params
from orchestration.cli.base import Group
from orchestration.cli.tables import Column, echo_table, when
from orchestration.db import warehouse


@click.group("templates", cls=Group,
             help="Report templates: versions, lifecycle (draft -> approved -> deprecated) and Gate A.")
def group() -> None:
    pass


@group.command("list", help="Template versions with their state: system ones, plus a tenant's custom ones with --tenant.")
@params.tenant(help_text="also show this tenant's custom templates")
def list_cmd(tenant: str | None) -> None:
    from orchestration.services import templates

    with warehouse.connection() as conn:
        rows = templates.list_versions(conn, tenant_id=tenant)
    echo_table(
        [Column("template"), Column("ver", right=True), Column("state"), Column("owner"), Column("author"),
         Column("approved by")],
        [(v.key, v.version, v.state, v.owner_tenant or "system", v.author, v.approved_by) for v in rows],
        click.echo, empty="no templates registered: run `nexus-reports init`")


@group.command("show", help="One template version: content, state and history.")
@click.argument("key")
@click.option("--version", type=params.VERSION, default=None, help="[default: the newest version]")
@params.tenant(help_text="the tenant whose custom template this is")
def show_cmd(key: str, version: int | None, tenant: str | None) -> None:
    import yaml

    from orchestration.services import templates

    with warehouse.connection() as conn:
        view = templates.show(conn, key, version, tenant_id=tenant)
    v = view.version
    click.echo(f"{view.template.label}: {v.state} (author {v.author}, approved by {v.approved_by or '-'}, "
               f"hash {v.content_hash[:16]})")
    click.echo(yaml.safe_dump(view.template.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
    click.echo("history:")
    for e in view.history:
        details = {k: val for k, val in e.details.items() if k != "diff"}
        click.echo(f"  {when(e.at)}  {e.event:<15} {e.actor:<26} {details}")
        if e.details.get("diff"):
            click.echo("    " + e.details["diff"].replace("\n", "\n    "))


@group.command("diff", help="What changed between two versions.")
@click.argument("key")
@click.argument("v1", type=params.VERSION)
@click.argument("v2", type=params.VERSION)
@params.tenant(help_text="the tenant whose custom template this is")
def diff_cmd(key: str, v1: int, v2: int, tenant: str | None) -> None:
    from orchestration.services import templates

    with warehouse.connection() as conn:
        click.echo(templates.diff(conn, key, v1, v2, tenant_id=tenant) or "(no differences)")


@group.command("submit", help="Submit a template file as a new version (Gate A runs).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@params.actor("the submitting principal")
@params.tenant(help_text="submit as this tenant's custom template")
def submit_cmd(file: str, actor: str, tenant: str | None) -> None:
    from orchestration.services import templates

    bootstrap.ready()
    with warehouse.connection() as conn:
        template = templates.submit(conn, file, actor=actor, tenant_id=tenant)
    click.echo(f"{template.label} submitted by {actor}; Gate A passed; awaiting approval by another approver")


@group.command("approve", help="Approve a draft (Gate A runs again; the approver must not be the author).")
@click.argument("key")
@click.argument("version", type=params.VERSION)
@params.actor("the approver")
def approve_cmd(key: str, version: int, actor: str) -> None:
    from orchestration.services import templates

    bootstrap.ready()
    with warehouse.connection() as conn:
        templates.approve(conn, key, version, actor=actor)
    click.echo(f"{key} v{version} approved by {actor}")


@group.command("deprecate", help="Deprecate an approved version: scheduled runs stop, manual runs warn.")
@click.argument("key")
@click.argument("version", type=params.VERSION)
@params.actor()
@params.reason()
def deprecate_cmd(key: str, version: int, actor: str, reason: str) -> None:
    from orchestration.services import templates

    with warehouse.connection() as conn:
        templates.deprecate(conn, key, version, actor=actor, reason=reason)
    click.echo(f"{key} v{version} deprecated by {actor}: {reason}")
