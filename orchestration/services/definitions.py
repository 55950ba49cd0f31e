"""Saved report definitions: create, list, show, update (a new version), activate, deprecate,
archive and validate. Each use case owns its transaction and is audited (previews and runs are
services.definition_runs).

A definition belongs to one tenant, taken from the caller's verified membership; another
tenant's definition is NotFound. Activation re-validates (services.definition_checks): the
entities still active and visible, every field still allowed for this requester now, the
validation hash unchanged, the tenant the one it was saved under.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from orchestration.access import audit, clearance, policy
from orchestration.access.tokens import Authenticated
from orchestration.catalog import definition_store as store
from orchestration.catalog.definitions import (
    Definition,
    DefinitionCreate,
    DefinitionSpec,
    DefinitionUpdate,
    DefinitionVersion,
)
from orchestration.errors import Conflict, Denied, Invalid, NotFound
from orchestration.governance import versioned
from orchestration.governance.versioned import Retirement
from orchestration.registry import builder
from orchestration.services import definition_checks as checks

PAGE_MAX = 200


@dataclass(frozen=True)
class DefinitionView:
    definition: Definition
    version: DefinitionVersion


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_definition(conn, caller: Authenticated, body: DefinitionCreate, *, correlation_id: str | None = None,
                      now: dt.datetime | None = None) -> DefinitionView:
    now = now or _utcnow()
    tenant_id = checks.tenant_for_new(caller, body.tenant_id, "definition")
    checks.authorize(conn, caller, "define", tenant_id, f"report definition {body.report_name!r}", correlation_id)
    spec = DefinitionSpec.model_validate(body.model_dump(exclude={"tenant_id"}))
    with conn:
        entities, _ = checks.compile_spec(conn, clearance.viewer_for(caller.principal), spec, tenant_id)
        context = checks.saved_context(caller.principal, tenant_id, spec)
        definition = store.create(conn, tenant_id=tenant_id, created_by=checks.who(caller), now=now)
        version = store.add_version(conn, definition.definition_id, 1, spec, context=context, created_by=checks.who(caller),
                                    validation_hash=builder.validation_hash(spec, entities), now=now)
        audit.record(conn, actor=checks.who(caller), action="definition.create", target=definition.definition_id,
                     outcome="succeeded", tenant_id=tenant_id, correlation_id=correlation_id,
                     details={"report_name": spec.report_name, "validation_hash": version.validation_hash})
    return DefinitionView(definition, version)


def list_definitions(conn, caller: Authenticated, *, status: str | None = None, vertical: str | None = None,
                     cursor: str | None = None, limit: int = 50) -> tuple[list[DefinitionView], str | None]:
    if not 1 <= limit <= PAGE_MAX:
        raise Invalid(f"limit must be between 1 and {PAGE_MAX}")
    principal = caller.principal
    tenants = None if policy.ALL_TENANTS in principal.tenants else sorted(principal.tenants)
    invalid_only = status == store.INVALID
    statuses = [status] if status and not invalid_only else ["draft", "active", "deprecated"]
    views: list[DefinitionView] = []
    after = cursor
    with conn:
        while len(views) <= limit:
            batch = store.list_for(conn, tenants, statuses=statuses, after=after, limit=limit + 1,
                                   invalid_only=invalid_only)
            for definition in batch:
                version = store.get_version(conn, definition.definition_id, definition.current_version)
                if vertical is None or not version.spec.vertical_scope or vertical in version.spec.vertical_scope:
                    views.append(DefinitionView(definition, version))
            if len(batch) <= limit:
                break
            after = batch[-1].definition_id
    more = len(views) > limit
    views = views[:limit]
    return views, (views[-1].definition.definition_id if more and views else None)


def get_definition(conn, caller: Authenticated, definition_id: str, version: int | None = None) -> DefinitionView:
    with conn:
        definition = checks.visible(conn, caller.principal, definition_id)
        wanted = version or definition.current_version
        if not 1 <= wanted <= definition.current_version:
            raise NotFound(f"report definition {definition_id} has no version {wanted}")
        return DefinitionView(definition, store.get_version(conn, definition_id, wanted))


def _changeable(conn, caller: Authenticated, definition_id: str, action: str, correlation_id: str | None) -> Definition:
    definition = checks.visible(conn, caller.principal, definition_id)
    checks.authorize(conn, caller, action, definition.tenant_id, f"report definition {definition_id}", correlation_id)
    return definition


def _locked(conn, definition_id: str, if_match: str | None) -> Definition:
    definition = store.get(conn, definition_id, for_update=True)
    versioned.ensure_changeable(f"report definition {definition_id}", status=definition.status,
                                version=definition.current_version, current_etag=definition.etag, if_match=if_match)
    return definition


def update_definition(conn, caller: Authenticated, definition_id: str, changes: DefinitionUpdate, *,
                      if_match: str | None = None, correlation_id: str | None = None,
                      now: dt.datetime | None = None) -> DefinitionView:
    """A new version; the active version (if any) keeps running until the new one is activated."""
    now = now or _utcnow()
    _changeable(conn, caller, definition_id, "define", correlation_id)
    given = changes.model_dump(exclude_none=True)
    if not given:
        raise Invalid("nothing to change")
    with conn:
        definition = _locked(conn, definition_id, if_match)
        current = store.get_version(conn, definition_id, definition.current_version)
        spec = DefinitionSpec.model_validate({**current.spec.model_dump(), **given})
        entities, _ = checks.compile_spec(conn, clearance.viewer_for(caller.principal), spec, definition.tenant_id)
        number = definition.current_version + 1
        version = store.add_version(conn, definition_id, number, spec,
                                    context=checks.saved_context(caller.principal, definition.tenant_id, spec),
                                    validation_hash=builder.validation_hash(spec, entities),
                                    created_by=checks.who(caller), now=now)
        definition = store.update(conn, definition_id, {"current_version": number}, now=now)
        audit.record(conn, actor=checks.who(caller), action="definition.update", target=definition_id, outcome="succeeded",
                     tenant_id=definition.tenant_id, correlation_id=correlation_id,
                     details={"version": number, "changed": sorted(given), "validation_hash": version.validation_hash})
    return DefinitionView(definition, version)


def validate_definition(conn, caller: Authenticated, definition_id: str, *,
                        correlation_id: str | None = None) -> checks.Validation:
    view = get_definition(conn, caller, definition_id)
    with conn:
        result = checks.check(conn, caller.principal, view.definition, view.version)
        audit.record(conn, actor=checks.who(caller), action="definition.validate", target=definition_id,
                     outcome="succeeded" if result.valid else "failed", tenant_id=view.definition.tenant_id,
                     correlation_id=correlation_id, details={"version": view.version.version, "errors": list(result.errors)})
    return result


def activate_definition(conn, caller: Authenticated, definition_id: str, *, correlation_id: str | None = None,
                        now: dt.datetime | None = None) -> DefinitionView:
    """The approval step: an approver who did not write the version, and a definition that validates now."""
    now = now or _utcnow()
    definition = _changeable(conn, caller, definition_id, "approve", correlation_id)
    author = store.get_version(conn, definition_id, definition.current_version).created_by
    if author == checks.who(caller):
        reason = f"{author} wrote version {definition.current_version}: activation needs a second person"
        audit.record_now(conn, actor=author, action="approve.denied", target=definition_id, outcome="denied",
                         tenant_id=definition.tenant_id, correlation_id=correlation_id, details={"reason": reason})
        raise Denied(reason)
    with conn:
        definition = _locked(conn, definition_id, None)
        version = store.get_version(conn, definition_id, definition.current_version)
        if version.created_by == checks.who(caller):  # a version added since the check above
            raise Conflict(f"report definition {definition_id} changed while it was being activated; try again")
        if definition.status == "active" and definition.active_version == version.version:
            raise Conflict(f"version {version.version} of {definition_id} is active already")
        result = checks.check(conn, caller.principal, definition, version)
        if not result.valid:
            raise Invalid("the definition does not validate: " + "; ".join(result.errors))
        store.mark_version_active(conn, definition_id, version.version, by=checks.who(caller), now=now)
        definition = store.update(conn, definition_id, {"status": "active", "active_version": version.version,
                                                        "activated_at": now}, now=now)
        audit.record(conn, actor=checks.who(caller), action="definition.activate", target=definition_id, outcome="succeeded",
                     tenant_id=definition.tenant_id, correlation_id=correlation_id,
                     details={"version": version.version, "author": version.created_by})
    return DefinitionView(definition, store.get_version(conn, definition_id, version.version))


_RETIRE = {"deprecated": ({"active"}, "deprecated_at"), "archived": ({"draft", "active", "deprecated"}, "archived_at")}


def retire_definition(conn, caller: Authenticated, definition_id: str, status: str, reason: Retirement, *,
                      correlation_id: str | None = None, now: dt.datetime | None = None) -> DefinitionView:
    now = now or _utcnow()
    _changeable(conn, caller, definition_id, "define", correlation_id)
    with conn:
        definition = _locked(conn, definition_id, None)
        allowed, stamp = _RETIRE[status]
        if definition.status not in allowed:
            raise Conflict(f"report definition {definition_id} is {definition.status}; it cannot become {status}")
        definition = store.update(conn, definition_id, {"status": status, stamp: now, "reason_code": reason.reason_code,
                                                        "reason_text": reason.reason_text}, now=now)
        audit.record(conn, actor=checks.who(caller), action=f"definition.{status}", target=definition_id, outcome="succeeded",
                     tenant_id=definition.tenant_id, correlation_id=correlation_id, details=reason.model_dump())
    return DefinitionView(definition, store.get_version(conn, definition_id, definition.current_version))

