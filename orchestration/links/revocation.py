"""Revoking links: one link, every link of a run, of a template (optionally within one tenant),
or every link of a tenant (the incident switch). Who may do which is decided here; every
revocation and every refusal is an audit row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from orchestration.access import audit
from orchestration.access import policy as access
from orchestration.links import records
from orchestration.links.errors import LinkError
from orchestration.links.expiry import utcnow
from orchestration.runs import records as run_records

# Besides a platform admin: who may revoke links by run or by template within a tenant
# (the creator of a link may always revoke that link), and who may pull the tenant switch.
REVOKE_ROLES = frozenset({"manager", "tenant_admin"})
TENANT_SWITCH_ROLES = frozenset({"tenant_admin"})
# Who may revoke every link of a template across tenants.
TEMPLATE_WIDE_ROLES = frozenset({"template_owner"})


@dataclass(frozen=True)
class Scope:
    """What a revocation covers: its name, how records.revoke selects it, the tenants it touches
    (None: every tenant), and why the actor may not (None: it may)."""

    name: str
    by: str
    params: tuple
    tenants: list[str] | None
    denial: str | None


def _denial(principal: access.Principal | None, tenants: list[str] | None, roles: frozenset[str]) -> str | None:
    """None when the principal may revoke in all of `tenants` (None: across every tenant)."""
    denial = access.standing_denial(principal)
    if denial or "platform_admin" in principal.roles:
        return denial
    if not principal.roles & roles:
        return f"{principal.principal_id} has none of the roles that may do this ({', '.join(sorted(roles))}, platform_admin)"
    if tenants is None:
        return None if access.ALL_TENANTS in principal.tenants else f"{principal.principal_id} is not a member of every tenant"
    outside = [t for t in tenants if not principal.member_of(t)]
    return f"{principal.principal_id} is not a member of tenant {', '.join(outside)}" if outside else None


def _scope(conn, principal, actor: str, *, link_id, run_id, template_key, tenant_id) -> Scope:
    if link_id is not None:
        row = records.tenant_and_creator(conn, link_id)
        if row is None:
            raise LinkError(f"no link {link_id}")
        own = row[1] == actor and principal is not None and principal.active
        return Scope(f"link {link_id}", "link", (link_id,), [row[0]],
                     None if own else _denial(principal, [row[0]], REVOKE_ROLES))
    if run_id is not None:
        run = run_records.get_run(conn, run_id)
        if run is None:
            raise LinkError(f"no run {run_id}")
        return Scope(f"run {run_id}", "run", (run_id,), [run.tenant_id], _denial(principal, [run.tenant_id], REVOKE_ROLES))
    if template_key is not None:
        runs = run_records.run_ids_of_template(conn, template_key)
        if tenant_id is None:
            return Scope(f"template {template_key}", "runs", (runs,), None,
                         _denial(principal, None, TEMPLATE_WIDE_ROLES))
        return Scope(f"template {template_key} of tenant {tenant_id}", "runs_of_tenant", (runs, tenant_id), [tenant_id],
                     _denial(principal, [tenant_id], REVOKE_ROLES))
    return Scope(f"tenant {tenant_id}", "tenant", (tenant_id,), [tenant_id],
                 _denial(principal, [tenant_id], TENANT_SWITCH_ROLES))


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
    scope = _scope(conn, principal, actor, link_id=link_id, run_id=run_id, template_key=template_key,
                   tenant_id=tenant_id)
    audit_tenant = scope.tenants[0] if scope.tenants else None
    if scope.denial:
        audit.record_now(conn, actor=actor, action="link.revoke.denied", target=scope.name, outcome="denied",
                         tenant_id=audit_tenant, details={"reason": scope.denial, "revoke_reason": reason})
        raise access.AccessDenied(f"{actor} may not revoke the links of {scope.name}: {scope.denial}")
    with conn.cursor() as cur:
        revoked = records.revoke(cur, scope.by, scope.params, now=now, actor=actor, reason=reason)
        audit.record(conn, actor=actor, action="link.revoke", target=scope.name, outcome="succeeded",
                     tenant_id=audit_tenant, details={"reason": reason, "link_ids": revoked, "count": len(revoked)})
    return revoked
