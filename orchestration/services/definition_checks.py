"""What every definition use case asks first: who is calling, may they, can they see the
definition, and does it still compile and validate against the registry now.

Shared by the definition use cases (save, change, activate) and the run use cases (preview, run,
execute), so that a preview, a run and its execution in a worker answer these the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestration.access import audit, clearance, policy
from orchestration.access.clearance import Viewer
from orchestration.access.tokens import Authenticated
from orchestration.catalog import definition_store as store
from orchestration.catalog.definitions import Definition, DefinitionSpec, DefinitionVersion, SecurityContext
from orchestration.errors import Denied, Invalid, NotFound
from orchestration.registry import builder
from orchestration.registry import store as registry_store
from orchestration.registry.entities import Entity


@dataclass(frozen=True)
class Validation:
    valid: bool
    validation_hash: str | None
    errors: tuple[str, ...]


def who(caller: Authenticated) -> str:
    return caller.principal.principal_id


def authorize(conn, caller: Authenticated, action: str, tenant_id: str, target: str, correlation_id: str | None) -> None:
    """The token's scopes, then the policy; a denial is audited either way."""
    if not caller.allows(action):
        reason = f"token {caller.token_id} is not scoped for {action}"
        audit.record_now(conn, actor=who(caller), action=f"{action}.denied", target=target, outcome="denied",
                         tenant_id=tenant_id, correlation_id=correlation_id, details={"reason": reason})
        raise Denied(reason)
    policy.authorize(conn, who(caller), action, target=target, tenant_id=tenant_id, correlation_id=correlation_id)


def tenant_for_new(caller: Authenticated, requested: str | None, what: str) -> str:
    """The tenant a new definition (or chart) belongs to: the caller's own, never just what the body says."""
    principal = caller.principal
    if requested is not None:
        if not principal.member_of(requested):
            raise NotFound(f"no tenant {requested!r} for {principal.principal_id}")
        return requested
    tenants = sorted(principal.tenants - {policy.ALL_TENANTS})
    if policy.ALL_TENANTS in principal.tenants or len(tenants) != 1:
        raise Invalid(f"tenant_id: the caller belongs to several tenants; say which one the {what} is for")
    return tenants[0]


def narrowed(saved: tuple[str, ...], held: frozenset[str] | None, kind: str) -> tuple[str, ...] | None:
    """One dimension of a row scope: what a definition names (empty: all) within what the
    principal holds (None: all); None when neither restricts. Disjoint scopes are a refusal,
    not an empty report."""
    if not saved and held is None:
        return None
    if held is None:
        return tuple(sorted(saved))
    chosen = sorted(set(saved) & held) if saved else sorted(held)
    if not chosen:
        raise Denied(f"none of the {kind} asked for ({', '.join(saved)}) is in {kind} scope "
                     f"({', '.join(sorted(held))})")
    return tuple(chosen)


def saved_context(principal: policy.Principal, tenant_id: str, spec: DefinitionSpec) -> SecurityContext:
    """The context a definition is saved under: its tenant, and the verticals and regions it asks
    for within the saving principal's own (every later run is held to it)."""
    return SecurityContext(tenant_id=tenant_id,
                           verticals=narrowed(spec.vertical_scope, principal.verticals, "verticals") or (),
                           geo_scopes=narrowed(spec.geo_scope, principal.geo_scopes, "regions") or ())


def entities_of(conn, spec: DefinitionSpec, tenant_id: str) -> list[Entity]:
    found = []
    for entity_id in spec.entity_ids:
        entity = registry_store.get(conn, entity_id)
        if entity is None or entity.tenant_id not in (None, tenant_id):
            raise Invalid(f"entity_ids: no registry entity {entity_id}")
        found.append(entity)
    return found


def visible(conn, principal: policy.Principal, definition_id: str) -> Definition:
    """The definition, or NotFound when it does not exist or belongs to a tenant the principal is not in."""
    definition = store.get(conn, definition_id)
    if definition is None or not principal.member_of(definition.tenant_id):
        raise NotFound(f"no report definition {definition_id}")
    return definition


def compile_spec(conn, viewer: Viewer, spec: DefinitionSpec, tenant_id: str,
                 **kwargs) -> tuple[list[Entity], builder.Compiled]:
    entities = entities_of(conn, spec, tenant_id)
    return entities, builder.compile_definition(spec, entities, viewer, **kwargs)


def check(conn, principal: policy.Principal, definition: Definition, version: DefinitionVersion) -> Validation:
    """Whether the version runs now for this principal: entities active and visible, every field
    allowed for them, the registry unchanged since the version was saved (validation hash)."""
    errors: list[str] = []
    computed = None
    if version.security_context.tenant_id != definition.tenant_id:
        errors.append("the security context does not match the definition's tenant")
    try:
        entities, _ = compile_spec(conn, clearance.viewer_for(principal), version.spec, definition.tenant_id)
        computed = builder.validation_hash(version.spec, entities)
        if computed != version.validation_hash:
            errors.append("the registry changed since the definition was saved (validation hash differs): "
                          "save a new version to accept the change")
    except Invalid as exc:
        errors.append(str(exc))
    return Validation(not errors, computed, tuple(errors))
