"""Registry use cases: list, show, create, update, activate, deprecate, archive, and registering
the system entries (registry/system_entities.py).

Reading needs only an active principal and lists what it may use: the system entries and its
own tenants' entries, active ones only unless it administers the registry. An entry of another
tenant is NotFound, never Denied, so ids reveal nothing. Changing a tenant's entry needs
`manage_registry` in that tenant; a system entry needs a platform admin. Every change is audited
and bumps the entry's version (its ETag); an update naming a stale version is refused.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from orchestration.access import audit, policy
from orchestration.access.tokens import Authenticated
from orchestration.errors import Conflict, Denied, Invalid, NotFound
from orchestration.governance import versioned
from orchestration.governance.versioned import Retirement
from orchestration.registry import sources, store
from orchestration.registry.entities import Entity, EntityCreate, EntityUpdate, JoinSpec
from orchestration.registry.system_entities import SYSTEM_ENTITIES
from orchestration.services import definition_validity as validity

PAGE_MAX = 200
# status -> the statuses it may move to, and the timestamp column the move sets
_MOVES = {
    "active": ({"draft", "deprecated"}, "activated_at"),
    "deprecated": ({"active"}, "deprecated_at"),
    "archived": ({"draft", "active", "deprecated"}, "archived_at"),
}


@dataclass(frozen=True)
class Page:
    items: list[Entity]
    next_cursor: str | None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _tenant_scope(principal: policy.Principal) -> list[str] | None:
    return None if policy.ALL_TENANTS in principal.tenants else sorted(principal.tenants)


def _administers(principal: policy.Principal, tenant_id: str | None) -> bool:
    if "platform_admin" in principal.roles:
        return True
    return tenant_id is not None and policy.decide(principal, "manage_registry", tenant_id=tenant_id) is None


def _require_scope(conn, caller: Authenticated, action: str, target: str, correlation_id: str | None) -> None:
    if not caller.allows(action):
        reason = f"token {caller.token_id} is not scoped for {action}"
        audit.record_now(conn, actor=caller.principal.principal_id, action=f"{action}.denied", target=target,
                         outcome="denied", correlation_id=correlation_id, details={"reason": reason})
        raise Denied(reason)


def _authorize_manage(conn, caller: Authenticated, tenant_id: str | None, target: str, correlation_id: str | None) -> None:
    _require_scope(conn, caller, "manage_registry", target, correlation_id)
    who = caller.principal.principal_id
    if tenant_id is None and "platform_admin" not in caller.principal.roles:
        reason = "system registry entries are managed by a platform admin"
        audit.record_now(conn, actor=who, action="manage_registry.denied", target=target, outcome="denied",
                         correlation_id=correlation_id, details={"reason": reason})
        raise Denied(f"{who} may not change {target}: {reason}")
    if tenant_id is not None:
        policy.authorize(conn, who, "manage_registry", target=target, tenant_id=tenant_id, correlation_id=correlation_id)


def _visible(conn, caller: Authenticated, entity_id: str) -> Entity:
    entity = store.get(conn, entity_id)
    principal = caller.principal
    if entity is None or (entity.tenant_id is not None and not principal.member_of(entity.tenant_id)):
        raise NotFound(f"no registry entity {entity_id}")
    if entity.status != "active" and not _administers(principal, entity.tenant_id):
        raise NotFound(f"no registry entity {entity_id}")
    return entity


def list_entities(conn, caller: Authenticated, *, status: str | None = None, vertical: str | None = None,
                  cursor: str | None = None, limit: int = 50) -> Page:
    if not 1 <= limit <= PAGE_MAX:
        raise Invalid(f"limit must be between 1 and {PAGE_MAX}")
    principal = caller.principal
    admin = "platform_admin" in principal.roles or "tenant_admin" in principal.roles
    statuses = [status] if status else (["draft", "active", "deprecated", "archived"] if admin else ["active"])
    if not admin and statuses != ["active"]:
        statuses = []  # only registry administrators see entries that are not active
    with conn:
        rows = store.list_visible(conn, tenant_ids=_tenant_scope(principal), statuses=statuses, vertical=vertical,
                                  after=cursor, limit=limit + 1)
    rows = [e for e in rows if e.status == "active" or _administers(principal, e.tenant_id)]
    more = len(rows) > limit
    items = rows[:limit]
    return Page(items, items[-1].entity_id if more and items else None)


def get_entity(conn, caller: Authenticated, entity_id: str) -> Entity:
    with conn:
        return _visible(conn, caller, entity_id)


def _check_joins(conn, joins: tuple[JoinSpec, ...], fields: set[str], tenant_id: str | None) -> None:
    for join in joins:
        target = store.live_by_name(conn, join.to_entity, [tenant_id] if tenant_id else [])
        if target is None:
            raise Invalid(f"joins: no registry entity named {join.to_entity!r} to join to")
        target_fields = {f.name for f in target.allowed_fields}
        for key in join.keys:
            if key.field not in fields:
                raise Invalid(f"joins: {key.field!r} is not an allowed field of this entity")
            if key.to_field not in target_fields:
                raise Invalid(f"joins: {key.to_field!r} is not an allowed field of {join.to_entity}")


def _check_tenant(caller: Authenticated, tenant_id: str | None) -> None:
    if tenant_id is not None and not caller.principal.member_of(tenant_id):
        raise NotFound(f"no tenant {tenant_id!r} for {caller.principal.principal_id}")


def create_entity(conn, caller: Authenticated, spec: EntityCreate, *, correlation_id: str | None = None,
                  now: dt.datetime | None = None) -> Entity:
    _check_tenant(caller, spec.tenant_id)
    _authorize_manage(conn, caller, spec.tenant_id, f"registry entity {spec.entity_name}", correlation_id)
    sources.check_fields(spec.data_source, spec.allowed_fields)
    with conn:
        _check_joins(conn, spec.joins, {f.name for f in spec.allowed_fields}, spec.tenant_id)
        if store.live_by_name(conn, spec.entity_name, [spec.tenant_id] if spec.tenant_id else []) is not None:
            raise Conflict(f"a registry entity named {spec.entity_name!r} exists already; update it or archive it first")
        entity = store.insert(conn, spec, created_by=caller.principal.principal_id, now=now or _utcnow())
        audit.record(conn, actor=caller.principal.principal_id, action="registry.create", target=entity.entity_id,
                     outcome="succeeded", tenant_id=entity.tenant_id, correlation_id=correlation_id,
                     details={"entity_name": entity.entity_name, "data_source": spec.data_source.model_dump()})
    return entity


def _manageable(conn, caller: Authenticated, entity_id: str, correlation_id: str | None) -> None:
    """Refuse (audited, committed) before any transaction opens: a denial must not roll back."""
    entity = store.get(conn, entity_id)
    if entity is None or (entity.tenant_id is not None and not caller.principal.member_of(entity.tenant_id)):
        raise NotFound(f"no registry entity {entity_id}")
    _authorize_manage(conn, caller, entity.tenant_id, f"registry entity {entity_id}", correlation_id)


def _locked(conn, entity_id: str, if_match: str | None) -> Entity:
    """The entry, locked for this transaction, once it is known to be current and changeable."""
    entity = store.get(conn, entity_id, for_update=True)
    versioned.ensure_changeable(f"registry entity {entity_id}", status=entity.status, version=entity.version,
                                current_etag=entity.etag, if_match=if_match)
    return entity


def update_entity(conn, caller: Authenticated, entity_id: str, changes: EntityUpdate, *, if_match: str | None = None,
                  correlation_id: str | None = None, now: dt.datetime | None = None) -> Entity:
    now = now or _utcnow()
    _manageable(conn, caller, entity_id, correlation_id)
    with conn:
        entity = _locked(conn, entity_id, if_match)
        fields = changes.allowed_fields if changes.allowed_fields is not None else entity.allowed_fields
        joins = changes.joins if changes.joins is not None else entity.joins
        if changes.allowed_fields is not None:
            sources.check_fields(entity.data_source, fields)
        _check_joins(conn, joins, {f.name for f in fields}, entity.tenant_id)
        columns = {}
        if changes.allowed_fields is not None:
            columns["allowed_fields"] = json.dumps([f.model_dump(mode="json") for f in fields])
        if changes.joins is not None:
            columns["joins"] = json.dumps([j.model_dump(mode="json") for j in joins])
        if changes.classification is not None:
            columns["classification"] = changes.classification
        if changes.status is not None:
            columns.update(_move(entity, changes.status, now))
        if not columns:
            raise Invalid("nothing to change: give allowed_fields, joins, classification or status")
        updated = store.update(conn, entity_id, columns, now=now)
        audit.record(conn, actor=caller.principal.principal_id, action="registry.update", target=entity_id,
                     outcome="succeeded", tenant_id=entity.tenant_id, correlation_id=correlation_id,
                     details={"changed": sorted(columns), "version": updated.version})
        validity.revalidate(conn, actor=caller.principal.principal_id, cause=f"registry.update {entity_id}",
                            entity_ids=[entity_id], correlation_id=correlation_id, now=now)
    return updated


def _move(entity: Entity, status: str, now: dt.datetime) -> dict[str, object]:
    allowed_from, stamp = _MOVES[status]
    if entity.status not in allowed_from:
        raise Conflict(f"registry entity {entity.entity_id} is {entity.status}; it cannot become {status}")
    return {"status": status, stamp: now}


def change_status(conn, caller: Authenticated, entity_id: str, status: str, retirement: Retirement | None = None, *,
                  correlation_id: str | None = None, now: dt.datetime | None = None) -> Entity:
    now = now or _utcnow()
    _manageable(conn, caller, entity_id, correlation_id)
    with conn:
        entity = _locked(conn, entity_id, None)
        columns = _move(entity, status, now)
        if retirement is not None:
            columns.update(reason_code=retirement.reason_code, reason_text=retirement.reason_text)
        updated = store.update(conn, entity_id, columns, now=now)
        audit.record(conn, actor=caller.principal.principal_id, action=f"registry.{status}", target=entity_id,
                     outcome="succeeded", tenant_id=entity.tenant_id, correlation_id=correlation_id,
                     details=retirement.model_dump() if retirement else {})
        validity.revalidate(conn, actor=caller.principal.principal_id, cause=f"registry.{status} {entity_id}",
                            entity_ids=[entity_id], correlation_id=correlation_id, now=now)
    return updated


def register_system_entities(conn, *, actor: str, correlation_id: str | None = None) -> list[Entity]:
    """Create and activate every system entry (SYSTEM_ENTITIES) that is missing; idempotent.

    `actor` is a platform admin's principal id (an operator on the host, or `make demo`). Each
    creation and activation goes through create_entity / change_status, so it is checked
    against the dbt manifest and audited like any other. A live entry of the same name is left
    as it is (an administrator may have changed or deprecated it on purpose); a draft one is
    activated. Returns the live entries, in SYSTEM_ENTITIES order.
    """
    principal = policy.get_principal(conn, actor)
    denial = policy.standing_denial(principal)
    if denial is None and "platform_admin" not in principal.roles:
        denial = "system registry entries are managed by a platform admin"
    if denial:  # refused up front, also when nothing is missing: the answer must not depend on the state
        audit.record_now(conn, actor=actor, action="manage_registry.denied", target="system registry entities",
                         outcome="denied", correlation_id=correlation_id, details={"reason": denial})
        raise Denied(f"{actor} may not register the system entities: {denial}")
    caller = Authenticated(principal, "(operator)", frozenset())
    entries = []
    for spec in SYSTEM_ENTITIES:
        with conn:
            entity = store.live_by_name(conn, spec.entity_name, [])
        if entity is None:
            entity = create_entity(conn, caller, spec, correlation_id=correlation_id)
        if entity.status == "draft":
            entity = change_status(conn, caller, entity.entity_id, "active", correlation_id=correlation_id)
        entries.append(entity)
    return entries
