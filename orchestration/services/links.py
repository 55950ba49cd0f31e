"""Download-link use cases for the adapters: create, list, revoke. Typed in and out.

The link layer (links.service) checks, audits and commits each of them; this module is the
entry point the CLI (and later the API) calls; lists are `links.records.Link` records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from orchestration.links import service as link_service
from orchestration.links.records import Link
from orchestration.links.service import CreatedLink

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
    return link_service.create(conn, new.run_id, fmt=new.fmt, principal_id=new.principal_id, actor=new.actor,
                               variant=new.variant, expires_in=new.expires_in)


def list_links(conn, *, tenant_id: str | None = None, run_id: str | None = None) -> list[Link]:
    return link_service.list_links(conn, tenant_id=tenant_id, run_id=run_id)


def revoke(conn, revocation: Revocation) -> list[int]:
    r = revocation
    return link_service.revoke(conn, actor=r.actor, reason=r.reason, link_id=r.link_id, run_id=r.run_id,
                               template_key=r.template_key, tenant_id=r.tenant_id)
