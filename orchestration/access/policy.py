"""Principals, roles, tenant memberships and the access-control matrix.

Every command and Dagster entry point asks `authorize` before acting; a denial is written to
the audit log (and committed) before the caller sees it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchestration.access import audit, identifiers
from orchestration.access.roles import ROLES
from orchestration.errors import Denied

ALL_TENANTS = "*"

# action -> roles allowed to perform it (platform_admin may do everything but NOT_IMPLIED).
MATRIX: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),
    "run": frozenset({"analyst", "manager", "template_owner", "tenant_admin", "root"}),
    "submit": frozenset({"template_owner"}),
    "approve": frozenset({"approver"}),
    "deprecate": frozenset({"template_owner", "approver"}),
    "download": frozenset({"viewer", "analyst", "manager", "executive", "tenant_admin", "root"}),
    "schedule": frozenset({"manager", "tenant_admin"}),
    "manage_principals": frozenset({"tenant_admin"}),
    "legal_hold": frozenset({"tenant_admin"}),  # place or release a legal hold on a run's artifacts
    # the reportable entity registry of a tenant (system entries: platform_admin only)
    "manage_registry": frozenset({"tenant_admin"}),
    # report builder: save definitions, see row-level output (aggregates are the default for everyone else)
    "define": frozenset({"analyst", "manager", "template_owner", "tenant_admin", "root"}),
    "report_rows": frozenset({"analyst", "tenant_admin", "root"}),
    # include consent-withdrawn subjects in a report (ROOT requests, with a logged reason)
    "include_withdrawn": frozenset({"root"}),
    "audit": frozenset(),
    # follow one correlation id through the audit log (its tenants' rows; platform_admin: all)
    "audit_trace": frozenset({"auditor"}),
    # the operational KPIs of a tenant (the platform's, across tenants: platform_admin only)
    "kpis": frozenset({"tenant_admin"}),
    # build the signoff evidence pack: the platform's KPIs, access rules and every tenant's template versions
    "evidence": frozenset(),
}
ACTIONS = tuple(MATRIX)
# Actions platform_admin does not get implicitly: only the roles in MATRIX may do them. Seeing
# a withdrawn subject's data is root's alone, so administering the platform does not grant it.
NOT_IMPLIED = frozenset({"include_withdrawn"})


class AccessDenied(Denied):
    """The actor may not do this; the denial is already in the audit log."""


@dataclass(frozen=True)
class Principal:
    principal_id: str
    kind: str
    display_name: str
    active: bool
    roles: frozenset[str]
    tenants: frozenset[str]
    # The verticals and regions the principal may see within its tenants; None: unrestricted.
    verticals: frozenset[str] | None = None
    geo_scopes: frozenset[str] | None = None

    def member_of(self, tenant_id: str) -> bool:
        return ALL_TENANTS in self.tenants or tenant_id in self.tenants


def get_principal(conn, principal_id: str) -> Principal | None:
    with conn.cursor() as cur:
        cur.execute(
            """
            select p.principal_id, p.kind, p.display_name, p.active,
                   coalesce(array_agg(distinct r.role) filter (where r.role is not null), '{}'),
                   coalesce(array_agg(distinct m.tenant_id) filter (where m.tenant_id is not null), '{}'),
                   (select array_agg(s.value) from control.principal_scopes s
                    where s.principal_id = p.principal_id and s.dimension = 'vertical'),
                   (select array_agg(s.value) from control.principal_scopes s
                    where s.principal_id = p.principal_id and s.dimension = 'region')
            from control.principals p
            left join control.principal_roles r using (principal_id)
            left join control.tenant_memberships m using (principal_id)
            where p.principal_id = %s
            group by p.principal_id
            """,
            (principal_id,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    return Principal(row[0], row[1], row[2], row[3], frozenset(row[4]), frozenset(row[5]),
                     frozenset(row[6]) if row[6] else None, frozenset(row[7]) if row[7] else None)


def standing_denial(principal: Principal | None) -> str | None:
    """Whether the principal can be granted anything at all: known and active."""
    if principal is None:
        return "unknown principal"
    if not principal.active:
        return f"principal {principal.principal_id} is deactivated"
    return None


def decide(
    principal: Principal | None,
    action: str,
    *,
    tenant_id: str | None = None,
    allowed_roles: Iterable[str] | None = None,
) -> str | None:
    """None when allowed, else the reason for the denial (pure: no database, no audit)."""
    if action not in MATRIX:
        raise ValueError(f"unknown action {action!r}")
    denial = standing_denial(principal)
    if denial or ("platform_admin" in principal.roles and action not in NOT_IMPLIED):
        return denial
    if not principal.roles & MATRIX[action]:
        may = ", ".join(sorted(MATRIX[action])) or "platform_admin only"
        return f"{principal.principal_id} has none of the roles that may {action} ({may})"
    if allowed_roles is not None and not principal.roles & set(allowed_roles):
        allowed = ", ".join(sorted(allowed_roles))
        return f"{principal.principal_id} has none of the roles this template allows to {action} ({allowed})"
    if tenant_id is not None and not principal.member_of(tenant_id):
        return f"{principal.principal_id} is not a member of tenant {tenant_id}"
    return None


def authorize(
    conn,
    actor: str | None,
    action: str,
    *,
    target: str,
    tenant_id: str | None = None,
    allowed_roles: Iterable[str] | None = None,
    correlation_id: str | None = None,
) -> Principal:
    principal = get_principal(conn, actor) if actor else None
    reason = decide(principal, action, tenant_id=tenant_id, allowed_roles=allowed_roles)
    if reason:
        audit.record_now(
            conn, actor=actor or "(none)", action=f"{action}.denied", target=target, outcome="denied",
            tenant_id=tenant_id, correlation_id=correlation_id, details={"reason": reason},
        )
        raise AccessDenied(f"{actor or 'an unnamed requester'} may not {action} {target}: {reason}")
    return principal


# Roles that reach beyond one tenant: only a platform admin grants them.
PLATFORM_GRANTED = frozenset({"platform_admin", "approver", "template_owner", "root"})


@dataclass(frozen=True)
class Grants:
    """What a principal holds (or would hold after a change): its roles and tenant memberships."""

    roles: frozenset[str]
    tenants: frozenset[str]
    active: bool = True

    @classmethod
    def of(cls, principal: Principal) -> Grants:
        return cls(principal.roles, principal.tenants, principal.active)

    def described(self) -> dict[str, object]:
        return {"roles": sorted(self.roles), "tenants": sorted(self.tenants), "active": self.active}


def platform_wide(principal_id: str, grants: Grants) -> str | None:
    """Why this principal reaches beyond the tenants it is a member of, or None."""
    if identifiers.is_service(principal_id):
        return "a service account"
    wide = grants.roles & PLATFORM_GRANTED
    if wide:
        return f"role {', '.join(sorted(wide))}"
    if ALL_TENANTS in grants.tenants:
        return "a member of every tenant (*)"
    return None


def decide_principal_change(actor: Principal | None, principal_id: str, states: Iterable[Grants]) -> str | None:
    """None when the actor may move the principal through these states (before and/or after),
    else why not (pure). A platform admin may do anything; a tenant admin only what stays inside
    the tenants it administers, both before and after: so it can neither take over another
    tenant's principal nor strip a platform-wide one."""
    denial = standing_denial(actor)
    if denial or "platform_admin" in actor.roles:
        return denial
    if "tenant_admin" not in actor.roles:
        return f"{actor.principal_id} has none of the roles that may manage_principals (tenant_admin)"
    for grants in states:
        wide = platform_wide(principal_id, grants)
        if wide:
            return f"{principal_id} would be or is platform-wide ({wide}): only a platform admin may create or change it"
        if not grants.tenants:
            return f"{principal_id} has no tenant membership: only a platform admin may change it"
        for tenant in sorted(grants.tenants):
            if not actor.member_of(tenant):
                return f"{actor.principal_id} is not a member of tenant {tenant}"
    return None


def authorize_principal_change(conn, actor: str, principal_id: str, change: str, states: Iterable[Grants]) -> Principal:
    """`decide_principal_change`, with the denial audited (committed) before it is raised."""
    states = list(states)
    principal = get_principal(conn, actor) if actor else None
    reason = decide_principal_change(principal, principal_id, states)
    if reason:
        audit.record_now(conn, actor=actor or "(none)", action=f"principal.{change}.denied", target=principal_id,
                         outcome="denied", details={"reason": reason, "states": [g.described() for g in states]})
        raise AccessDenied(f"{actor or 'an unnamed requester'} may not {change} principal {principal_id}: {reason}")
    return principal


def insert_principal(cur, principal_id: str, *, kind: str, display_name: str, grants: Grants) -> None:
    """A new principal row and its grants (the caller owns the transaction)."""
    cur.execute("insert into control.principals (principal_id, kind, display_name, active) values (%s, %s, %s, %s)",
                (principal_id, kind, display_name, grants.active))
    replace_grants(cur, principal_id, grants)


def replace_grants(cur, principal_id: str, grants: Grants) -> None:
    """Set a principal's roles and memberships to exactly these (the caller owns the transaction)."""
    cur.execute("delete from control.principal_roles where principal_id = %s", (principal_id,))
    cur.execute("delete from control.tenant_memberships where principal_id = %s", (principal_id,))
    for role in sorted(grants.roles):
        cur.execute("insert into control.principal_roles values (%s, %s)", (principal_id, role))
    for tenant in sorted(grants.tenants):
        cur.execute("insert into control.tenant_memberships values (%s, %s)", (principal_id, tenant))


def replace_scopes(cur, principal_id: str, verticals: Iterable[str] | None, regions: Iterable[str] | None) -> None:
    """Set a principal's vertical and region scopes to exactly these; None or empty: unrestricted
    (the caller owns the transaction)."""
    cur.execute("delete from control.principal_scopes where principal_id = %s", (principal_id,))
    for dimension, values in (("vertical", verticals), ("region", regions)):
        for value in sorted(values or ()):
            cur.execute("insert into control.principal_scopes values (%s, %s, %s)", (principal_id, dimension, value))


def set_active(cur, principal_id: str, active: bool) -> None:
    cur.execute("update control.principals set active = %s where principal_id = %s", (active, principal_id))


def upsert_principal(
    conn, principal_id: str, *, kind: str = "user", display_name: str | None = None,
    roles: Iterable[str] = (), tenants: Iterable[str] = (), actor: str = "system",
    verticals: Iterable[str] | None = None, regions: Iterable[str] | None = None,
) -> None:
    """Create or silently replace a principal: for the sample data (`seed`) and test fixtures only.
    People and commands change principals through services.principals (checked and audited).
    In the caller's transaction."""
    roles, tenants = sorted(set(roles)), sorted(set(tenants))
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; known: {', '.join(ROLES)}")
    with conn.cursor() as cur:
        cur.execute(
            """insert into control.principals (principal_id, kind, display_name) values (%s, %s, %s)
               on conflict (principal_id) do update set kind = excluded.kind,
                   display_name = excluded.display_name, active = true""",
            (principal_id, kind, display_name or principal_id),
        )
        cur.execute("delete from control.principal_roles where principal_id = %s", (principal_id,))
        cur.execute("delete from control.tenant_memberships where principal_id = %s", (principal_id,))
        for role in roles:
            cur.execute("insert into control.principal_roles values (%s, %s)", (principal_id, role))
        for tenant in tenants:
            cur.execute("insert into control.tenant_memberships values (%s, %s)", (principal_id, tenant))
        replace_scopes(cur, principal_id, verticals, regions)
        audit.record(conn, actor=actor, action="principal.upsert", target=principal_id, outcome="succeeded",
                     details={"kind": kind, "roles": roles, "tenants": tenants,
                              "verticals": sorted(verticals or ()), "regions": sorted(regions or ())})


def deactivate(conn, principal_id: str, *, actor: str) -> None:
    """Unchecked, in the caller's transaction: for test fixtures (people use services.principals)."""
    with conn.cursor() as cur:
        cur.execute("update control.principals set active = false where principal_id = %s", (principal_id,))
        audit.record(conn, actor=actor, action="principal.deactivate", target=principal_id, outcome="succeeded")


def list_principals(conn) -> list[Principal]:
    with conn.cursor() as cur:
        cur.execute("select principal_id from control.principals order by principal_id")
        ids = [r[0] for r in cur.fetchall()]
    return [get_principal(conn, i) for i in ids]


SCHEDULER = "svc:scheduler"
DEMO = "svc:demo"
DELIVERY = "svc:delivery"
PLATFORM_OWNER = "owner@nexus.example"
ROOT = "root@nexus.example"
PLATFORM_ADMIN = "platform@nexus.example"
# Scoped sample principals: (tenant, principal, verticals, regions), created when the tenant is.
SCOPED_SAMPLES = (
    ("acme", "programme@acme.example", ("healthcare", "finance"), None),  # two of acme's three verticals
    ("globex", "emea@globex.example", None, ("emea",)),                    # one region only
)
APPROVERS = ("approver@nexus.example", "approver2@nexus.example")


def seed_sample_principals(conn, tenant_ids: Iterable[str]) -> int:
    """The sample people and service accounts `seed` and `demo` use (in the caller's transaction:
    services.principals.seed_sample_principals commits)."""
    tenant_ids = list(tenant_ids)
    rows = [
        (PLATFORM_OWNER, "user", "Template owner", ["template_owner"], [ALL_TENANTS]),
        (APPROVERS[0], "user", "Report approver", ["approver"], [ALL_TENANTS]),
        (APPROVERS[1], "user", "Second approver", ["approver"], [ALL_TENANTS]),
        (PLATFORM_ADMIN, "user", "Platform admin", ["platform_admin"], [ALL_TENANTS]),
        # ROOT requests: the only role that may include consent-withdrawn subjects (with a reason)
        (ROOT, "user", "Root", ["root"], [ALL_TENANTS]),
        # Service accounts run every standard template, confidential and restricted included.
        (SCHEDULER, "service", "Schedules", ["analyst", "manager"], [ALL_TENANTS]),
        (DEMO, "service", "make demo", ["analyst", "manager"], [ALL_TENANTS]),
        # Creates the links deliveries carry: may download and receive every standard template, run none.
        (DELIVERY, "service", "Delivery", ["executive"], [ALL_TENANTS]),
    ]
    for tenant in tenant_ids:
        for role in ("analyst", "manager", "executive", "viewer", "tenant_admin"):
            rows.append((f"{role}@{tenant}.example", "user", f"{role.replace('_', ' ').title()} ({tenant})", [role], [tenant]))
    for principal_id, kind, name, roles, tenants in rows:
        upsert_principal(conn, principal_id, kind=kind, display_name=name, roles=roles, tenants=tenants, actor="seed")
    scoped = [s for s in SCOPED_SAMPLES if s[0] in tenant_ids]
    for tenant, principal_id, verticals, regions in scoped:
        upsert_principal(conn, principal_id, display_name=f"Scoped analyst ({tenant})", roles=["analyst"],
                         tenants=[tenant], verticals=verticals, regions=regions, actor="seed")
    return len(rows) + len(scoped)
