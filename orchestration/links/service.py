"""Secure download links: one unguessable token per (artifact, principal), checked at every use.

A link binds one artifact (run + variant + format) to one principal until it expires. Only the
sha256 of its token is stored, so the table alone opens nothing. At every request the link must
exist, not be revoked, not be expired; its principal must still be active, still hold a role
that may download the template (the matrix's 'download' and the template's roles.receive) and
still be a member of the run's tenant; and the run must still be completed. Every grant and
every denial is an access event and an audit row.

How long a link may live depends on the template's sensitivity (EXPIRY_CAPS). Every expiry
decision takes `now` from the caller, so tests (and the web app's clock) can move time.
Revocation works on one link, a run, a template or a whole tenant (the incident switch).

Every function runs in the caller's transaction; services/links.py owns it (and records a
refused request in a transaction of its own, after the refused one rolled back).

This module holds the steps a link is made and used through (create, resolve, refuse_method)
and re-exports what callers name as `links.<x>`; the parts live beside it: errors, tokens,
expiry (lifetimes), artifact (reading the file), records (the SQL, typed), revocation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from orchestration.access import audit
from orchestration.access import policy as access
from orchestration.catalog.templates import Template
from orchestration.exports import formats
from orchestration.governance import versions
from orchestration.links import records
from orchestration.links.artifact import CHUNK, VARIANTS, open_artifact, published_file
from orchestration.links.errors import PUBLIC_MESSAGES, LinkDenied, LinkError
from orchestration.links.expiry import EXPIRY_CAPS, checked_lifetime, expiry_cap, parse_duration, utcnow
from orchestration.links.records import AccessEvent, Link, access_events, status
from orchestration.links.revocation import REVOKE_ROLES, TENANT_SWITCH_ROLES, revoke
from orchestration.links.tokens import BASE_URL_ENV, DEFAULT_BASE_URL, new_token, token_hash, url_for
from orchestration.runs import records as run_records
from orchestration.runs.run_record import RunRecord

__all__ = [
    "BASE_URL_ENV", "CHUNK", "DEFAULT_BASE_URL", "EXPIRY_CAPS", "PUBLIC_MESSAGES", "REVOKE_ROLES",
    "TENANT_SWITCH_ROLES", "VARIANTS", "AccessEvent", "CreatedLink", "Grant", "Link", "LinkDenied", "LinkError",
    "access_events", "create", "expiry_cap", "list_links", "open_artifact", "parse_duration", "record_denial",
    "refuse_method", "resolve", "revoke", "status", "token_hash", "url_for", "utcnow",
]


@dataclass(frozen=True)
class CreatedLink:
    link_id: int
    token: str  # shown once, never stored
    run_id: str
    tenant_id: str
    principal_id: str
    fmt: str
    variant: str
    expires_at: dt.datetime

    def url(self, base: str | None = None) -> str:
        return url_for(self.token, base)


@dataclass(frozen=True)
class Grant:
    """A request that passed every check: the file to stream."""

    link_id: int
    run_id: str
    principal_id: str
    tenant_id: str
    fmt: str
    filename: str
    size: int
    chunks: Iterator[bytes]

    @property
    def content_type(self) -> str:
        return formats.content_type(self.fmt)


def list_links(conn, *, tenant_id: str | None = None, run_id: str | None = None,
               now: dt.datetime | None = None) -> list[Link]:
    """Links (newest first) with their template and status; never their token."""
    return records.list_links(conn, tenant_id=tenant_id, run_id=run_id, now=now or utcnow())


# ---------------------------------------------------------------- create


def _check_shareable(conn, run: RunRecord, fmt: str, variant: str) -> None:
    if run.state != "completed":
        raise LinkError(f"run {run.run_id} is {run.state}: only a completed run can be shared")
    if variant not in VARIANTS:
        raise LinkError(f"unknown variant {variant!r}; available: {', '.join(VARIANTS)}")
    if fmt not in run.formats:
        raise LinkError(f"run {run.run_id} has no {fmt} file; it has {', '.join(run.formats)}")
    if variant != "internal":
        try:
            published_file(conn, run.run_id, variant, fmt)  # the manifest lists it: no file opened here
        except FileNotFoundError:
            raise LinkError(f"run {run.run_id} has no {variant} variant of its {fmt} file "
                            "(its template's redaction policy makes none)") from None


def create(
    conn, run_id: str, *, fmt: str, principal_id: str, actor: str, variant: str = "internal",
    expires_in: dt.timedelta | None = None, now: dt.datetime | None = None,
) -> CreatedLink:
    """A new link to one file of a completed run for one principal (audited). The creator must be
    allowed to download it for the run's tenant, the principal to receive it."""
    now = now or utcnow()
    run = run_records.get_run(conn, run_id)
    if run is None:
        raise LinkError(f"no run {run_id}")
    tenant, target = run.tenant_id, f"run {run_id} {fmt} ({variant})"
    template = versions.template_of_run(conn, run)
    receive = template.roles.receive
    # The creator first: whoever may not download it learns nothing more about the run.
    access.authorize(conn, actor, "download", target=target, tenant_id=tenant, allowed_roles=receive,
                     correlation_id=run.trace_id)
    _check_shareable(conn, run, fmt, variant)
    expires_at = now + checked_lifetime(template, expires_in)
    reason = access.decide(access.get_principal(conn, principal_id), "download", tenant_id=tenant, allowed_roles=receive)
    if reason:
        audit.record_now(conn, actor=actor, action="link.create.denied", target=target, outcome="denied",
                         tenant_id=tenant, correlation_id=run.trace_id,
                         details={"principal": principal_id, "reason": f"recipient: {reason}"})
        raise access.AccessDenied(f"{principal_id} may not receive {template.key} for {tenant}: {reason}")
    token = new_token()
    with conn.cursor() as cur:
        link_id = records.insert(cur, digest=token_hash(token), run_id=run_id, variant=variant, fmt=fmt,
                                 principal_id=principal_id, tenant_id=tenant, created_by=actor, created_at=now,
                                 expires_at=expires_at)
        audit.record(conn, actor=actor, action="link.create", target=f"link {link_id}", outcome="succeeded",
                     tenant_id=tenant, correlation_id=run.trace_id,
                     details={"run_id": run_id, "format": fmt, "variant": variant, "principal": principal_id,
                              "template": template.label, "sensitivity": template.sensitivity,
                              "expires_at": expires_at.isoformat()})
    return CreatedLink(link_id, token, run_id, tenant, principal_id, fmt, variant, expires_at)


# ---------------------------------------------------------------- every request


def _record_access(conn, *, now, link: Link | None, outcome: str, reason: str,
                   remote_addr: str | None, details: dict[str, Any] | None = None) -> None:
    """One access event and one audit row, in the caller's transaction."""
    with conn.cursor() as cur:
        records.insert_access_event(cur, now=now, link=link, outcome=outcome, reason=reason, remote_addr=remote_addr)
        audit.record(
            conn, actor=link.principal_id if link else "(anonymous)",
            action="link.download" if outcome == "granted" else "link.download.denied",
            target=f"link {link.link_id}" if link else "link (unknown token)",
            outcome="allowed" if outcome == "granted" else "denied",
            # The run's correlation id: a download shows in the trace of the request that asked for the run.
            tenant_id=link.tenant_id if link else None,
            correlation_id=run_records.trace_id(conn, link.run_id) if link else None,
            details={**({"run_id": link.run_id} if link else {}), "reason": reason, "remote_addr": remote_addr,
                     "format": link.format if link else None,
                     **(details or {})},
        )


def record_denial(conn, denied: LinkDenied, *, now: dt.datetime, remote_addr: str | None) -> None:
    """The access event and audit row of a refused request (resolve raised `denied`)."""
    _record_access(conn, now=now, link=denied.link, outcome="denied", reason=denied.reason, remote_addr=remote_addr,
                   details=denied.details)


def refuse_method(conn, token: str, method: str, *, now: dt.datetime | None = None,
                  remote_addr: str | None = None) -> LinkDenied:
    """A request with a token but a method other than GET (HEAD, POST, PUT, DELETE, PATCH,
    OPTIONS, ...): not a download, still an access event, recorded against the link if the token
    names one, whatever its state. Returns the 405 to answer."""
    now = now or utcnow()
    reason = f"method {method} not allowed"
    _record_access(conn, now=now, link=records.by_token_hash(conn, token_hash(token or "")), outcome="denied",
                   reason=reason, remote_addr=remote_addr, details={"method": method})
    return LinkDenied(405, reason)


def _standing_refusal(conn, link: Link, now: dt.datetime) -> tuple[int, str, RunRecord | None, Template | None]:
    """(status, reason, run, template) of a link as things are now; status 0 when it may be used."""
    if link.revoked_at is not None:
        return 403, f"revoked by {link.revoked_by} at {link.revoked_at.isoformat()}: {link.revoke_reason}", None, None
    if now >= link.expires_at:
        return 410, f"link expired at {link.expires_at.isoformat()}", None, None
    run = run_records.get_run(conn, link.run_id)
    template = versions.template_of_run(conn, run)
    principal = access.get_principal(conn, link.principal_id)
    reason = access.decide(principal, "download", tenant_id=run.tenant_id, allowed_roles=template.roles.receive)
    if reason:
        return 403, reason, run, template
    if run.tenant_id != link.tenant_id:  # cannot happen through create(); refuse loudly if it does
        return 403, f"run tenant {run.tenant_id} differs from the link's {link.tenant_id}", run, template
    if run.state != "completed":
        return 410, f"run {run.run_id} is {run.state}", run, template
    return 0, "", run, template


def resolve(conn, token: str, *, now: dt.datetime | None = None, remote_addr: str | None = None) -> Grant:
    """Check a token against everything as it is now; the Grant to stream (its access event
    recorded in the caller's transaction), or LinkDenied (404 unknown, 403 revoked or not
    allowed, 410 expired), which the caller records with `record_denial` once it has rolled back."""
    now = now or utcnow()
    link = records.by_token_hash(conn, token_hash(token or ""))
    if link is None:
        raise LinkDenied(404, "unknown token")
    status_code, reason, _run, template = _standing_refusal(conn, link, now)
    if status_code:
        raise LinkDenied(status_code, reason, link=link)
    try:
        filename, size, chunks = open_artifact(conn, link.run_id, link.variant, link.format)
    except FileNotFoundError as exc:
        raise LinkDenied(410, f"artifact unavailable: {exc}", link=link) from exc
    try:
        _record_access(conn, now=now, link=link, outcome="granted", reason="granted", remote_addr=remote_addr,
                       details={"file": filename, "bytes": size, "template": template.label})
    except BaseException:
        chunks.close()
        raise
    return Grant(link.link_id, link.run_id, link.principal_id, link.tenant_id, link.format, filename, size, chunks)
