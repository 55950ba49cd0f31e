"""Download-link use cases for the adapters: create, list, revoke, and every request that
presents a token (resolve, refuse_method). Typed in and out.

The link layer (links.service, links.revocation) checks and audits each of them in the
transaction these functions own; a refused download is recorded in a transaction of its own
after the refused one rolled back. The CLI, the link routes and delivery call these; lists are
`links.records.Link` records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from orchestration.links import service as link_service
from orchestration.links.errors import LinkDenied
from orchestration.links.expiry import utcnow
from orchestration.links.records import Link
from orchestration.links.service import CreatedLink, Grant

# The longest any link may live: the link layer's own widest cap (each template's sensitivity
# caps it further). An adapter bounds a requested duration by this before asking.
MAX_EXPIRY: dt.timedelta = max(link_service.EXPIRY_CAPS.values())


@dataclass(frozen=True)
class NewLink:
    run_id: str
    fmt: str
    principal_id: str
    actor: str
    variant: str = "internal"
    expires_in: dt.timedelta | None = None  # None: the longest the template's sensitivity allows


@dataclass(frozen=True)
class Revocation:
    """Exactly one scope: a link, a run, a template (optionally within a tenant), or a tenant."""

    actor: str
    reason: str
    link_id: int | None = None
    run_id: str | None = None
    template_key: str | None = None
    tenant_id: str | None = None


def create(conn, new: NewLink) -> CreatedLink:
    with conn:
        return link_service.create(conn, new.run_id, fmt=new.fmt, principal_id=new.principal_id, actor=new.actor,
                                   variant=new.variant, expires_in=new.expires_in)


def list_links(conn, *, tenant_id: str | None = None, run_id: str | None = None) -> list[Link]:
    with conn:
        return link_service.list_links(conn, tenant_id=tenant_id, run_id=run_id)


def revoke(conn, revocation: Revocation) -> list[int]:
    r = revocation
    with conn:
        return link_service.revoke(conn, actor=r.actor, reason=r.reason, link_id=r.link_id, run_id=r.run_id,
                                   template_key=r.template_key, tenant_id=r.tenant_id)


def resolve(conn, token: str, *, now: dt.datetime | None = None, remote_addr: str | None = None) -> Grant:
    """The file a token opens now (its grant recorded), or LinkDenied (its refusal recorded)."""
    now = now or utcnow()
    try:
        with conn:
            grant = link_service.resolve(conn, token, now=now, remote_addr=remote_addr)
    except LinkDenied as denied:
        with conn:
            link_service.record_denial(conn, denied, now=now, remote_addr=remote_addr)
        raise
    return grant


def refuse_method(conn, token: str, method: str, *, now: dt.datetime | None = None,
                  remote_addr: str | None = None) -> LinkDenied:
    """A request with a token but not a GET: recorded against the link the token names; the 405."""
    with conn:
        return link_service.refuse_method(conn, token, method, now=now, remote_addr=remote_addr)
