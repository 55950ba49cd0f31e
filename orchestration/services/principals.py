"""Principal use cases: list, add, update, scope, deactivate, reactivate. Each one function, one transaction.

Every change is checked twice: the id and grants must be well formed (access.identifiers, known
roles, known tenants), and the actor must be allowed to move the principal from what it holds
to what it would hold (access.policy.decide_principal_change: a tenant admin only inside the
tenants it administers, never a platform-wide principal). Adding an id that exists is a
Conflict, never a silent replace; changes are explicit (`update`, `deactivate`, `reactivate`)
and audited with the state before and after. Every refusal is audited too.

Scopes narrow what a principal sees inside its tenants: verticals (business lines) and regions.
None (no scope rows) is unrestricted; `*` on the command line says so explicitly.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from orchestration.access import audit, identifiers, policy, tenants
from orchestration.access.policy import Grants, Principal
from orchestration.access.roles import ROLES
from orchestration.errors import Conflict, Invalid, NotFound, ServiceError
from orchestration.services import definition_validity as validity


@dataclass(frozen=True)
class PrincipalChange:
    """What a change did: the principal before (None when it is new) and after."""

    principal_id: str
    change: str  # add, update, scope, deactivate, reactivate
    before: Principal | None
    after: Principal

    @property
    def changed(self) -> bool:
        return (self.before is None or Grants.of(self.before) != Grants.of(self.after)
                or _scopes(self.before) != _scopes(self.after))


_SCOPE_VALUE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
UNRESTRICTED = "*"


def _scopes(principal: Principal) -> dict[str, list[str] | None]:
    def listed(values: frozenset[str] | None) -> list[str] | None:
        return sorted(values) if values else None
    return {"verticals": listed(principal.verticals), "regions": listed(principal.geo_scopes)}


def _scope_values(values: Iterable[str], what: str) -> frozenset[str] | None:
    """Scope values as given on the command line: names, or `*` alone for unrestricted (None)."""
    chosen = frozenset(v.strip() for v in values)
    if UNRESTRICTED in chosen:
        if len(chosen) > 1:
            raise Invalid(f"--{what} * means every {what}: give it alone, not with {', '.join(sorted(chosen - {'*'}))}")
        return None
    bad = sorted(v for v in chosen if not _SCOPE_VALUE.match(v))
    if bad:
        raise Invalid(f"{what} {', '.join(map(repr, bad))}: a {what} is a name of lowercase letters, digits and '_' "
                      "(e.g. public_sector, emea), or * for every one")
    return chosen or None


def seed_sample_principals(conn, tenant_ids: Iterable[str]) -> int:
    """The sample people and service accounts of `seed`, `demo` and the tests, unchecked (there is
    no one yet to check them against); how many."""
    with conn:
        return policy.seed_sample_principals(conn, tenant_ids)


def list_principals(conn) -> list[Principal]:
    return policy.list_principals(conn)


def _refuse(conn, actor: str, change: str, principal_id: object, exc: ServiceError) -> None:
    """One audit row for a refusal that is not a denial (the denials audit themselves)."""
    audit.record_now(conn, actor=actor if isinstance(actor, str) and actor else "(none)",
                     action=f"principal.{change}.refused", target=str(principal_id)[:300], outcome="denied",
                     details={"reason": str(exc)})


def _roles(roles: Iterable[str]) -> frozenset[str]:
    roles = frozenset(r.strip() for r in roles)
    if not roles:
        raise Invalid("give at least one --role")
    unknown = roles - set(ROLES)
    if unknown:
        raise Invalid(f"unknown roles {', '.join(sorted(unknown))}; known: {', '.join(ROLES)}")
    return roles


def _tenants(conn, values: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(identifiers.membership(v) for v in values)
    if not chosen:
        raise Invalid("give at least one --tenant (a tenant id, or * for every tenant)")
    known = tenants.list_tenant_ids(conn)
    for tenant in sorted(chosen - {identifiers.ALL_TENANTS}):
        if tenant not in known:
            near = difflib.get_close_matches(tenant, known, n=3, cutoff=0.6)
            raise NotFound(f"unknown tenant {tenant}" + (f"; did you mean {', '.join(near)}?" if near else ""))
    return chosen


def _existing(conn, principal_id: str) -> Principal:
    found = policy.get_principal(conn, principal_id)
    if found is None:
        raise NotFound(f"no principal {principal_id}; create it with `principals add`")
    return found


def _record(conn, actor: str, change: PrincipalChange) -> None:
    # A principal of exactly one tenant is that tenant's event: its admins find it by tenant.
    tenants_touched = set(change.after.tenants) | (set(change.before.tenants) if change.before else set())
    tenant = next(iter(tenants_touched)) if len(tenants_touched) == 1 and identifiers.ALL_TENANTS not in tenants_touched else None
    audit.record(conn, actor=actor, action=f"principal.{change.change}", target=change.principal_id, outcome="succeeded",
                 tenant_id=tenant, details={"before": Grants.of(change.before).described() if change.before else None,
                          "after": Grants.of(change.after).described(), "kind": change.after.kind,
                          "scopes": {"before": _scopes(change.before) if change.before else None,
                                     "after": _scopes(change.after)}})
    # A change of roles, clearance or scopes can leave the principal's saved definitions unable to run.
    validity.revalidate(conn, actor=actor, cause=f"principal.{change.change} {change.principal_id}",
                        owner=change.principal_id)


def add(conn, principal_id: str, *, roles: Iterable[str], tenants: Iterable[str], actor: str,
        service: bool = False, display_name: str | None = None, verticals: Iterable[str] = (),
        regions: Iterable[str] = ()) -> PrincipalChange:
    """Create a principal (a service account when the id is svc:name), optionally scoped to
    verticals and regions (none given: unrestricted). An id that exists is a Conflict: change
    it with update/scope/reactivate."""
    try:
        scoped = _scope_values(verticals, "vertical"), _scope_values(regions, "region")
        principal_id = identifiers.new_principal_id(principal_id)
        if service and not identifiers.is_service(principal_id):
            raise Invalid(f"{principal_id}: a service account's id is svc:name")
        grants = Grants(_roles(roles), _tenants(conn, tenants))
        policy.authorize_principal_change(conn, actor, principal_id, "add", [grants])
        existing = policy.get_principal(conn, principal_id)
        if existing is not None:
            # Whoever may not touch the existing principal is denied (and learns no more than that).
            policy.authorize_principal_change(conn, actor, principal_id, "add", [Grants.of(existing)])
            raise Conflict(f"principal {principal_id} already exists ({'active' if existing.active else 'deactivated'}); "
                           "change it with `principals update` or `principals reactivate`")
    except (Invalid, NotFound, Conflict) as exc:
        _refuse(conn, actor, "add", principal_id, exc)
        raise
    with conn, conn.cursor() as cur:
        policy.insert_principal(cur, principal_id, kind="service" if identifiers.is_service(principal_id) else "user",
                                display_name=display_name or principal_id, grants=grants)
        policy.replace_scopes(cur, principal_id, *scoped)
        change = PrincipalChange(principal_id, "add", None, policy.get_principal(conn, principal_id))
        _record(conn, actor, change)
    return change


def update(conn, principal_id: str, *, actor: str, roles: Iterable[str] | None = None,
           tenants: Iterable[str] | None = None) -> PrincipalChange:
    """Replace a principal's roles and/or memberships (what is not given stays as it is)."""
    try:
        if roles is None and tenants is None:
            raise Invalid("give --role and/or --tenant: the roles or memberships the principal should hold")
        before = _existing(conn, identifiers.principal_id(principal_id))
        after = Grants(_roles(roles) if roles is not None else before.roles,
                       _tenants(conn, tenants) if tenants is not None else before.tenants, before.active)
    except (Invalid, NotFound) as exc:
        _refuse(conn, actor, "update", principal_id, exc)
        raise
    policy.authorize_principal_change(conn, actor, principal_id, "update", [Grants.of(before), after])
    if after == Grants.of(before):
        return PrincipalChange(principal_id, "update", before, before)
    with conn, conn.cursor() as cur:
        policy.replace_grants(cur, principal_id, after)
        change = PrincipalChange(principal_id, "update", before, policy.get_principal(conn, principal_id))
        _record(conn, actor, change)
    return change


def scope(conn, principal_id: str, *, actor: str, verticals: Iterable[str] | None = None,
          regions: Iterable[str] | None = None) -> PrincipalChange:
    """Set the verticals and/or regions a principal may see (what is not given stays; `*`:
    unrestricted). Who may change the principal's grants may change its scopes."""
    try:
        if verticals is None and regions is None:
            raise Invalid("give --vertical and/or --region (repeat for several; * for every one)")
        before = _existing(conn, identifiers.principal_id(principal_id))
        new_verticals = _scope_values(verticals, "vertical") if verticals is not None else before.verticals
        new_regions = _scope_values(regions, "region") if regions is not None else before.geo_scopes
    except (Invalid, NotFound) as exc:
        _refuse(conn, actor, "scope", principal_id, exc)
        raise
    policy.authorize_principal_change(conn, actor, principal_id, "scope", [Grants.of(before)])
    if (new_verticals, new_regions) == (before.verticals, before.geo_scopes):
        return PrincipalChange(principal_id, "scope", before, before)
    with conn, conn.cursor() as cur:
        policy.replace_scopes(cur, principal_id, new_verticals, new_regions)
        change = PrincipalChange(principal_id, "scope", before, policy.get_principal(conn, principal_id))
        _record(conn, actor, change)
    return change


def _set_active(conn, principal_id: str, *, actor: str, active: bool) -> PrincipalChange:
    change = "reactivate" if active else "deactivate"
    try:
        before = _existing(conn, identifiers.principal_id(principal_id))
    except (Invalid, NotFound) as exc:
        _refuse(conn, actor, change, principal_id, exc)
        raise
    policy.authorize_principal_change(conn, actor, principal_id, change, [Grants.of(before)])
    if before.active == active:
        exc = Conflict(f"principal {principal_id} is already {'active' if active else 'deactivated'}")
        _refuse(conn, actor, change, principal_id, exc)
        raise exc
    with conn, conn.cursor() as cur:
        policy.set_active(cur, principal_id, active)
        done = PrincipalChange(principal_id, change, before, policy.get_principal(conn, principal_id))
        _record(conn, actor, done)
    return done


def deactivate(conn, principal_id: str, *, actor: str) -> PrincipalChange:
    """Deactivate: every check of the principal fails from now on (its links included)."""
    return _set_active(conn, principal_id, actor=actor, active=False)


def reactivate(conn, principal_id: str, *, actor: str) -> PrincipalChange:
    """Reactivate a deactivated principal, with the grants it held."""
    return _set_active(conn, principal_id, actor=actor, active=True)
