"""`nexus-reports tokens`: API tokens for the Reporting API; shown once, stored only as a hash."""

from __future__ import annotations

import datetime as dt

import click

from orchestration.cli import params
from orchestration.cli.base import Group
from orchestration.cli.tables import Column, echo_table
from orchestration.db import warehouse


@click.group("tokens", cls=Group, help="API tokens: a principal's bearer credentials for the Reporting API; "
             "expiring, revocable, optionally narrowed by scopes.")
def group() -> None:
    pass


def _max_lifetime():
    from orchestration.access.tokens import MAX_LIFETIME

    return MAX_LIFETIME


@group.command("create", help="Make a token for a principal; prints it once, alone on the last line.")
@click.option("--for", "principal_id", required=True, type=params.PRINCIPAL, help="the principal it authenticates")
@click.option("--expires-in", default="30d", show_default=True, type=params.Duration(_max_lifetime),
              help="e.g. 12h, 30d, 52w")
@click.option("--scope", "scopes", multiple=True, help="an action the token may be used for (repeatable); "
              "none: everything the principal's roles allow")
@params.actor("who makes it (the principal itself, or whoever may manage it)")
def create_cmd(principal_id: str, expires_in: dt.timedelta, scopes: tuple[str, ...], actor: str) -> None:
    from orchestration.services import tokens

    with warehouse.connection() as conn:
        issued = tokens.create_token(conn, actor=actor, principal_id=principal_id, lifetime=expires_in, scopes=scopes)
    token = issued.token
    click.echo(f"token {token.token_id} for {token.principal_id}, expires {token.expires_at:%Y-%m-%d %H:%M:%SZ}"
               + (f", scopes {', '.join(token.scopes)}" if token.scopes else "") + "; it is not shown again:")
    click.echo(issued.secret)


@group.command("list", help="Tokens of a principal (yours by default), with their state; never the secret.")
@click.option("--for", "principal_id", default=None, type=params.PRINCIPAL, help="whose tokens [default: --as]")
@params.actor("who asks")
def list_cmd(principal_id: str | None, actor: str) -> None:
    from orchestration.services import tokens

    with warehouse.connection() as conn:
        rows = tokens.list_tokens(conn, actor=actor, principal_id=principal_id)
    now = dt.datetime.now(dt.UTC)
    echo_table(
        [Column("token"), Column("principal"), Column("scopes"), Column("created"), Column("expires"), Column("last used"),
         Column("state")],
        [(t.token_id, t.principal_id, ",".join(t.scopes) or "all", t.created_at, t.expires_at, t.last_used_at,
          t.state(now)) for t in rows],
        click.echo, empty="no tokens")


@group.command("revoke", help="Revoke a token at once: its next request is refused (401).")
@click.argument("token_id")
@params.actor("who revokes it")
def revoke_cmd(token_id: str, actor: str) -> None:
    from orchestration.services import tokens

    with warehouse.connection() as conn:
        token = tokens.revoke_token(conn, actor=actor, token_id=token_id)
    click.echo(f"revoked {token.token_id} of {token.principal_id}")
