"""`nexus-reports principals`: people and service accounts, their roles and tenant memberships.

Adding an existing id is refused; every change is its own command, audited before and after.
Ids and tenants are checked by the service, not by click, so that a refused one is audited too.
"""

from __future__ import annotations

import click

from orchestration.cli import params
from orchestration.cli.base import Group
from orchestration.cli.tables import Column, echo_table
from orchestration.db import warehouse


@click.group("principals", cls=Group,
             help="Principals (users and service accounts), their roles, tenant memberships and scopes.")
def group() -> None:
    pass


@group.command("list", help="Every principal with its kind, state, roles and tenants.")
def list_cmd() -> None:
    from orchestration.services import principals

    with warehouse.connection() as conn:
        rows = principals.list_principals(conn)
    echo_table([Column("principal"), Column("kind"), Column("state"), Column("roles"), Column("tenants"),
                Column("scope")],
               [(p.principal_id, p.kind, "active" if p.active else "inactive", "roles=" + ",".join(sorted(p.roles)),
                 "tenants=" + ",".join(sorted(p.tenants)), _scope(p)) for p in rows],
               click.echo, empty="no principals: run `nexus-reports seed` or add one")


def _scope(p) -> str:
    """'verticals=a,b regions=*' (* : unrestricted)."""
    return (f"verticals={','.join(sorted(p.verticals)) if p.verticals else '*'} "
            f"regions={','.join(sorted(p.geo_scopes)) if p.geo_scopes else '*'}")


def _describe(change) -> str:
    p = change.after
    state = "" if p.active else "; deactivated"
    scoped = "" if p.verticals is None and p.geo_scopes is None else f"; {_scope(p)}"
    return f"{p.principal_id}: roles {', '.join(sorted(p.roles))}; tenants {', '.join(sorted(p.tenants))}{scoped}{state}"


def _before(change) -> str:
    b = change.before
    return f"roles {', '.join(sorted(b.roles))}; tenants {', '.join(sorted(b.tenants))}; " \
           f"{'active' if b.active else 'deactivated'}"


_ROLE_HELP = "a role (repeat for several)"
_TENANT_HELP = "a tenant id, or * for every tenant (repeat for several)"
_VERTICAL_HELP = "a vertical the principal may see, e.g. healthcare (repeat for several; * or none: every vertical)"
_REGION_HELP = "a region the principal may see, e.g. emea (repeat for several; * or none: every region)"


@group.command("add", help="Create a principal with these roles and tenant memberships (an existing id is refused).")
@click.argument("principal_id")
@click.option("--role", "roles", multiple=True, required=True, help=_ROLE_HELP)
@click.option("--tenant", "tenants", multiple=True, required=True, help=_TENANT_HELP)
@click.option("--vertical", "verticals", multiple=True, help=_VERTICAL_HELP)
@click.option("--region", "regions", multiple=True, help=_REGION_HELP)
@click.option("--service", is_flag=True, help="a service account (id svc:name) rather than a person")
@params.actor("who adds it: a platform admin, or a tenant admin of every tenant given")
def add_cmd(principal_id: str, roles, tenants, verticals, regions, service: bool, actor: str) -> None:
    from orchestration.services import principals

    with warehouse.connection() as conn:
        change = principals.add(conn, principal_id, roles=roles, tenants=tenants, service=service, actor=actor,
                                verticals=verticals, regions=regions)
    click.echo(_describe(change))


@group.command("scope", help="Set the verticals and/or regions a principal may see within its tenants "
                             "(what is not given stays; * for every one); audited with before and after.")
@click.argument("principal_id")
@click.option("--vertical", "verticals", multiple=True, help=_VERTICAL_HELP.replace("; * or none", "; *") +
              " [default: keep them]")
@click.option("--region", "regions", multiple=True, help=_REGION_HELP.replace("; * or none", "; *") +
              " [default: keep them]")
@params.actor("who changes it: a platform admin, or a tenant admin of every tenant it is a member of")
def scope_cmd(principal_id: str, verticals, regions, actor: str) -> None:
    from orchestration.services import principals

    with warehouse.connection() as conn:
        change = principals.scope(conn, principal_id, verticals=verticals or None, regions=regions or None,
                                  actor=actor)
    if not change.changed:
        click.echo(f"{principal_id}: no change")
        return
    click.echo(f"{principal_id}: {_scope(change.after)} (was: {_scope(change.before)})")


@group.command("update", help="Replace a principal's roles and/or tenant memberships; audited with before and after.")
@click.argument("principal_id")
@click.option("--role", "roles", multiple=True, help=_ROLE_HELP + " [default: keep the roles]")
@click.option("--tenant", "tenants", multiple=True, help=_TENANT_HELP + " [default: keep them]")
@params.actor("who changes it: a platform admin, or a tenant admin of every tenant before and after")
def update_cmd(principal_id: str, roles, tenants, actor: str) -> None:
    from orchestration.services import principals

    with warehouse.connection() as conn:
        change = principals.update(conn, principal_id, roles=roles or None, tenants=tenants or None, actor=actor)
    if not change.changed:
        click.echo(f"{principal_id}: no change")
        return
    click.echo(f"{_describe(change)} (was: {_before(change)})")


def _activation(name: str, help_text: str):
    @group.command(name, help=help_text)
    @click.argument("principal_id")
    @params.actor("who changes it: a platform admin, or a tenant admin of every tenant it is a member of")
    def command(principal_id: str, actor: str) -> None:
        from orchestration.services import principals

        with warehouse.connection() as conn:
            getattr(principals, name)(conn, principal_id, actor=actor)
        click.echo(f"{principal_id} {name}d by {actor}")

    return command


deactivate_cmd = _activation("deactivate", "Deactivate a principal: it can do nothing and its links stop working.")
reactivate_cmd = _activation("reactivate", "Reactivate a deactivated principal with the roles and tenants it held.")
