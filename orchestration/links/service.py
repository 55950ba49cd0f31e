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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from orchestration.access import audit
from orchestration.access import policy as access
from orchestration.catalog.templates import Template
from orchestration.db.warehouse import dict_rows
from orchestration.exports import formats
from orchestration.governance import lifecycle

# The longest a link may live, per template sensitivity; asking for longer is an error and the
# default is the cap.
EXPIRY_CAPS: dict[str, dt.timedelta] = {
    "restricted": dt.timedelta(hours=1),
    "confidential": dt.timedelta(hours=24),
    "internal": dt.timedelta(days=7),
}
VARIANTS = ("internal", "external")  # external: the redacted variant, where the template's policy makes one
# Besides a platform admin: who may revoke links by run or by template within a tenant
# (the creator of a link may always revoke that link), and who may pull the tenant switch.
REVOKE_ROLES = frozenset({"manager", "tenant_admin"})
TENANT_SWITCH_ROLES = frozenset({"tenant_admin"})
BASE_URL_ENV = "REPORTS_LINK_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8088"
CHUNK = 64 * 1024

# What the person holding the link is told: never whether the artifact exists.
PUBLIC_MESSAGES = {
    404: "This link is not valid.",
    403: "This link does not grant access.",
    410: "This link has expired.",
}


class LinkError(ValueError):
    """A link request that cannot be honoured (CLI): the message says what to change."""


class LinkDenied(Exception):
    """A request for a link was refused; `status` is the HTTP status, `reason` goes only to the
    access event and the audit log."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason

    @property
    def public_message(self) -> str:
        return PUBLIC_MESSAGES[self.status]


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


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def url_for(token: str, base: str | None = None) -> str:
    base = base or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/links/{token}"


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> dt.timedelta:
    """'90m', '2h', '7d', '1w' -> timedelta."""
    match = _DURATION.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise LinkError(f"invalid duration {text!r}: expected a positive number and a unit, e.g. 30m, 2h, 7d")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def expiry_cap(template: Template) -> dt.timedelta:
    return EXPIRY_CAPS[template.sensitivity]


def _run(conn, run_id: str) -> dict[str, Any] | None:
    with conn.cursor() as cur:
        cur.execute("select * from control.report_runs where run_id = %s", (run_id,))
        rows = dict_rows(cur)
    return rows[0] if rows else None


def _template_of(conn, run: dict[str, Any]) -> Template:
    template, _ = lifecycle.load_version(conn, run["template_key"], run["template_version"], tenant_id=run["tenant_id"])
    return template


# ---------------------------------------------------------------- reading the artifact


def _published_file(conn, run_id: str, variant: str, fmt: str):
    """(store, run key, manifest entry) of one published file of a run; FileNotFoundError if none."""
    from orchestration.artifacts import storage

    if variant not in VARIANTS:
        raise FileNotFoundError(f"variant {variant!r} is not published")
    run = _run(conn, run_id)
    if run is None or not run["artifact_location"]:
        raise FileNotFoundError(f"run {run_id} has no published artifacts")
    try:
        store, key = storage.for_location(run["artifact_location"])
        manifest = store.read_manifest(key)
    except storage.StorageError as exc:
        raise FileNotFoundError(f"run {run_id}: no readable manifest: {exc}") from exc
    entries = [f for f in manifest.get("files", [])
               if f.get("format") == fmt and f.get("variant", "internal") == variant]
    if len(entries) != 1:
        raise FileNotFoundError(f"run {run_id} has no {variant} {fmt} file")
    return store, key, entries[0]


def open_artifact(conn, run_id: str, variant: str, fmt: str) -> tuple[str, int, Iterator[bytes]]:
    """(file name, size in bytes, iterator of its bytes) of one published file of a run, read
    from the run's artifact store (local folder or S3) through its manifest. The bytes are
    streamed through this service rather than redirected to a presigned URL, so expiry and
    revocation are enforced at the one place that checks them. Raises FileNotFoundError when
    the artifact is gone."""
    from orchestration.artifacts import storage

    store, key, entry = _published_file(conn, run_id, variant, fmt)
    try:
        fh = store.open(key, entry["name"])  # opened now: a missing file is noticed before any response
    except storage.StorageError as exc:  # includes a name pointing outside the run's folder
        raise FileNotFoundError(f"run {run_id}: {entry['name']}: {exc}") from exc

    def chunks() -> Iterator[bytes]:
        with fh:
            while block := fh.read(CHUNK):
                yield block

    return entry["name"], entry["bytes"], chunks()


# ---------------------------------------------------------------- create


def create(
    conn, run_id: str, *, fmt: str, principal_id: str, actor: str, variant: str = "internal",
    expires_in: dt.timedelta | None = None, now: dt.datetime | None = None,
) -> CreatedLink:
    """A new link to one file of a completed run for one principal (audited). The creator must be
    allowed to download it for the run's tenant, the principal to receive it."""
    now = now or utcnow()
    run = _run(conn, run_id)
    if run is None:
        raise LinkError(f"no run {run_id}")
    tenant = run["tenant_id"]
    target = f"run {run_id} {fmt} ({variant})"
    template = _template_of(conn, run)
    receive = template.roles.receive
    # The creator first: whoever may not download it learns nothing more about the run.
    access.authorize(conn, actor, "download", target=target, tenant_id=tenant, allowed_roles=receive,
                     correlation_id=run_id)
    if run["state"] != "completed":
        raise LinkError(f"run {run_id} is {run['state']}: only a completed run can be shared")
    if variant not in VARIANTS:
        raise LinkError(f"unknown variant {variant!r}; available: {', '.join(VARIANTS)}")
    if fmt not in run["formats"]:
        raise LinkError(f"run {run_id} has no {fmt} file; it has {', '.join(run['formats'])}")
    if variant != "internal":
        try:
            _published_file(conn, run_id, variant, fmt)  # the manifest lists it: no file opened here
        except FileNotFoundError:
            raise LinkError(f"run {run_id} has no {variant} variant of its {fmt} file "
                            "(its template's redaction policy makes none)") from None
    cap = expiry_cap(template)
    expires_in = cap if expires_in is None else expires_in
    if expires_in <= dt.timedelta(0):
        raise LinkError("a link must expire in the future")
    if expires_in > cap:
        raise LinkError(f"{template.key} is {template.sensitivity}: a link may live at most {_human(cap)}, "
                        f"not {_human(expires_in)}")
    recipient = access.get_principal(conn, principal_id)
    reason = access.decide(recipient, "download", tenant_id=tenant, allowed_roles=receive)
    if reason:
        audit.record_now(conn, actor=actor, action="link.create.denied", target=target, outcome="denied",
                         tenant_id=tenant, correlation_id=run_id,
                         details={"principal": principal_id, "reason": f"recipient: {reason}"})
        raise access.AccessDenied(f"{principal_id} may not receive {template.key} for {tenant}: {reason}")
    token = secrets.token_urlsafe(32)
    expires_at = now + expires_in
    with conn, conn.cursor() as cur:
        cur.execute(
            """insert into control.links (token_sha256, run_id, variant, format, principal_id, tenant_id,
                                          created_by, created_at, expires_at)
               values (%s, %s, %s, %s, %s, %s, %s, %s, %s) returning link_id""",
            (token_hash(token), run_id, variant, fmt, principal_id, tenant, actor, now, expires_at),
        )
        (link_id,) = cur.fetchone()
        audit.record(conn, actor=actor, action="link.create", target=f"link {link_id}", outcome="succeeded",
                     tenant_id=tenant, correlation_id=run_id,
                     details={"run_id": run_id, "format": fmt, "variant": variant, "principal": principal_id,
                              "template": template.label, "sensitivity": template.sensitivity,
                              "expires_at": expires_at.isoformat()})
    return CreatedLink(link_id, token, run_id, tenant, principal_id, fmt, variant, expires_at)


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# ---------------------------------------------------------------- every request


def _record_access(conn, *, now, link: dict[str, Any] | None, outcome: str, reason: str,
                   remote_addr: str | None, details: dict[str, Any] | None = None) -> None:
    """One access event and one audit row, committed together."""
    link = link or {}
    with conn, conn.cursor() as cur:
        cur.execute(
            """insert into control.access_events (at, link_id, principal_id, tenant_id, run_id, outcome, reason, remote_addr)
               values (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (now, link.get("link_id"), link.get("principal_id"), link.get("tenant_id"), link.get("run_id"),
             outcome, reason, remote_addr),
        )
        audit.record(
            conn, actor=link.get("principal_id") or "(anonymous)",
            action="link.download" if outcome == "granted" else "link.download.denied",
            target=f"link {link['link_id']}" if link else "link (unknown token)",
            outcome="allowed" if outcome == "granted" else "denied",
            tenant_id=link.get("tenant_id"), correlation_id=link.get("run_id"),
            details={"reason": reason, "remote_addr": remote_addr, "format": link.get("format"), **(details or {})},
        )


def _deny(conn, now, link, status: int, reason: str, remote_addr: str | None) -> LinkDenied:
    _record_access(conn, now=now, link=link, outcome="denied", reason=reason, remote_addr=remote_addr)
    return LinkDenied(status, reason)


def resolve(conn, token: str, *, now: dt.datetime | None = None, remote_addr: str | None = None) -> Grant:
    """Check a token against everything as it is now; the Grant to stream, or LinkDenied
    (404 unknown, 403 revoked or not allowed, 410 expired). Both are recorded."""
    now = now or utcnow()
    with conn, conn.cursor() as cur:
        cur.execute("select * from control.links where token_sha256 = %s", (token_hash(token or ""),))
        rows = dict_rows(cur)
    if not rows:
        raise _deny(conn, now, None, 404, "unknown token", remote_addr)
    link = rows[0]
    if link["revoked_at"] is not None:
        raise _deny(conn, now, link, 403, f"revoked by {link['revoked_by']} at {link['revoked_at'].isoformat()}: "
                                          f"{link['revoke_reason']}", remote_addr)
    if now >= link["expires_at"]:
        raise _deny(conn, now, link, 410, f"link expired at {link['expires_at'].isoformat()}", remote_addr)
    run = _run(conn, link["run_id"])
    template = _template_of(conn, run)
    principal = access.get_principal(conn, link["principal_id"])
    reason = access.decide(principal, "download", tenant_id=run["tenant_id"], allowed_roles=template.roles.receive)
    if reason:
        raise _deny(conn, now, link, 403, reason, remote_addr)
    if run["tenant_id"] != link["tenant_id"]:  # cannot happen through create(); refuse loudly if it does
        raise _deny(conn, now, link, 403, f"run tenant {run['tenant_id']} differs from the link's {link['tenant_id']}",
                    remote_addr)
    if run["state"] != "completed":
        raise _deny(conn, now, link, 410, f"run {run['run_id']} is {run['state']}", remote_addr)
    try:
        filename, size, chunks = open_artifact(conn, link["run_id"], link["variant"], link["format"])
    except FileNotFoundError as exc:
        raise _deny(conn, now, link, 410, f"artifact unavailable: {exc}", remote_addr) from exc
    try:
        _record_access(conn, now=now, link=link, outcome="granted", reason="granted", remote_addr=remote_addr,
                       details={"file": filename, "bytes": size, "template": template.label})
    except BaseException:
        chunks.close()
        raise
    return Grant(link["link_id"], link["run_id"], link["principal_id"], link["tenant_id"], link["format"],
                 filename, size, chunks)


# ---------------------------------------------------------------- revoke and list


def revoke(
    conn, *, actor: str, reason: str, link_id: int | None = None, run_id: str | None = None,
    template_key: str | None = None, tenant_id: str | None = None, now: dt.datetime | None = None,
) -> list[int]:
    """Revoke one link, every link of a run, of a template (optionally within one tenant), or
    every link of a tenant (the incident switch). Returns the ids revoked now (audited)."""
    now = now or utcnow()
    if not (reason or "").strip():
        raise LinkError("a revocation needs a reason")
    if template_key is None and sum(x is not None for x in (link_id, run_id, tenant_id)) != 1:
        raise LinkError("revoke exactly one of: a link, a run, a template, a tenant")
    if template_key is not None and (link_id is not None or run_id is not None):
        raise LinkError("revoke exactly one of: a link, a run, a template (optionally with --tenant), a tenant")
    principal = access.get_principal(conn, actor)

    if link_id is not None:
        scope, where, params = f"link {link_id}", "l.link_id = %s", (link_id,)
        with conn, conn.cursor() as cur:
            cur.execute("select tenant_id, created_by from control.links where link_id = %s", (link_id,))
            row = cur.fetchone()
        if row is None:
            raise LinkError(f"no link {link_id}")
        tenants, own = [row[0]], row[1] == actor
        denial = None if own and principal and principal.active else _revoke_denial(principal, tenants, REVOKE_ROLES)
    elif run_id is not None:
        scope, where, params = f"run {run_id}", "l.run_id = %s", (run_id,)
        run = _run(conn, run_id)
        if run is None:
            raise LinkError(f"no run {run_id}")
        tenants = [run["tenant_id"]]
        denial = _revoke_denial(principal, tenants, REVOKE_ROLES)
    elif template_key is not None and tenant_id is None:
        scope, where, params = f"template {template_key}", "r.template_key = %s", (template_key,)
        tenants = None  # every tenant
        denial = _revoke_denial(principal, tenants, frozenset({"template_owner"}))
    elif template_key is not None:
        scope = f"template {template_key} of tenant {tenant_id}"
        where, params = "r.template_key = %s and l.tenant_id = %s", (template_key, tenant_id)
        tenants = [tenant_id]
        denial = _revoke_denial(principal, tenants, REVOKE_ROLES)
    else:
        scope, where, params = f"tenant {tenant_id}", "l.tenant_id = %s", (tenant_id,)
        tenants = [tenant_id]
        denial = _revoke_denial(principal, tenants, TENANT_SWITCH_ROLES)
    audit_tenant = tenants[0] if tenants else None
    if denial:
        audit.record_now(conn, actor=actor, action="link.revoke.denied", target=scope, outcome="denied",
                         tenant_id=audit_tenant, details={"reason": denial, "revoke_reason": reason})
        raise access.AccessDenied(f"{actor} may not revoke the links of {scope}: {denial}")
    with conn, conn.cursor() as cur:
        cur.execute(
            f"""update control.links l set revoked_at = %s, revoked_by = %s, revoke_reason = %s
                from control.report_runs r
                where r.run_id = l.run_id and l.revoked_at is null and {where}
                returning l.link_id""",
            (now, actor, reason, *params),
        )
        revoked = sorted(r[0] for r in cur.fetchall())
        audit.record(conn, actor=actor, action="link.revoke", target=scope, outcome="succeeded",
                     tenant_id=audit_tenant, details={"reason": reason, "link_ids": revoked, "count": len(revoked)})
    return revoked


def _revoke_denial(principal: access.Principal | None, tenants: list[str] | None, roles: frozenset[str]) -> str | None:
    """None when the principal may revoke in all of `tenants` (None: across every tenant)."""
    denial = access.standing_denial(principal)
    if denial or "platform_admin" in principal.roles:
        return denial
    if not principal.roles & roles:
        return f"{principal.principal_id} has none of the roles that may do this ({', '.join(sorted(roles))}, platform_admin)"
    if tenants is None:
        if access.ALL_TENANTS not in principal.tenants:
            return f"{principal.principal_id} is not a member of every tenant"
        return None
    outside = [t for t in tenants if not principal.member_of(t)]
    if outside:
        return f"{principal.principal_id} is not a member of tenant {', '.join(outside)}"
    return None


def status(link: dict[str, Any], now: dt.datetime | None = None) -> str:
    now = now or utcnow()
    if link["revoked_at"] is not None:
        return "revoked"
    return "expired" if now >= link["expires_at"] else "active"


def list_links(conn, *, tenant_id: str | None = None, run_id: str | None = None,
               now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Links (newest first) with their template and status; never their token."""
    with conn, conn.cursor() as cur:
        cur.execute(
            """select l.link_id, l.run_id, r.template_key, r.template_version, l.variant, l.format,
                      l.principal_id, l.tenant_id, l.created_by, l.created_at, l.expires_at,
                      l.revoked_at, l.revoked_by, l.revoke_reason,
                      (select count(*) from control.access_events e where e.link_id = l.link_id and e.outcome = 'granted') as downloads
               from control.links l join control.report_runs r using (run_id)
               where (%s::text is null or l.tenant_id = %s) and (%s::text is null or l.run_id = %s)
               order by l.link_id desc""",
            (tenant_id, tenant_id, run_id, run_id),
        )
        rows = dict_rows(cur)
    for row in rows:
        row["status"] = status(row, now)
    return rows


def access_events(conn, *, link_id: int | None = None, run_id: str | None = None) -> list[dict[str, Any]]:
    with conn, conn.cursor() as cur:
        cur.execute(
            """select * from control.access_events
               where (%s::bigint is null or link_id = %s) and (%s::text is null or run_id = %s)
               order by event_id""",
            (link_id, link_id, run_id, run_id),
        )
        return dict_rows(cur)
