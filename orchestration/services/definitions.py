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

from orchestration.access import audit, clearance
from orchestration.access.tokens import Authenticated
from orchestration.catalog import definition_store as store
from orchestration.catalog.definitions import (
    Definition,
    DefinitionCreate,
    DefinitionSpec,
    DefinitionUpdate,
    DefinitionVersion,
)
from orchestration.errors import Invalid
from orchestration.governance.versioned import Retirement
from orchestration.registry import builder
from orchestration.services import definition_checks as checks
from orchestration.services import versioned_lifecycle as lifecycle
from orchestration.services.versioned_lifecycle import RETIREMENTS, Draft, Kind

PAGE_MAX = lifecycle.PAGE_MAX
KIND = Kind(table=store.TABLE, noun="report definition", target="report definition", audit_name="definition",
            stops=RETIREMENTS)


@dataclass(frozen=True)
class DefinitionView:
    definition: Definition
    version: DefinitionVersion


def _draft(conn, caller: Authenticated, tenant_id: str, spec: DefinitionSpec, **details: object) -> Draft:
    """A version of `spec` compiled against the registry now, under the caller's clearance."""
    entities, _ = checks.compile_spec(conn, clearance.viewer_for(caller.principal), spec, tenant_id)
    validation_hash = builder.validation_hash(spec, entities)
    return Draft(spec, {"validation_hash": validation_hash,
                        "security_context": checks.saved_context(caller.principal, tenant_id, spec)},
                 {**details, "validation_hash": validation_hash})


def create_definition(conn, caller: Authenticated, body: DefinitionCreate, *, correlation_id: str | None = None,
                      now: dt.datetime | None = None) -> DefinitionView:
    tenant_id = checks.tenant_for_new(caller, body.tenant_id, "definition")
    checks.authorize(conn, caller, "define", tenant_id, f"report definition {body.report_name!r}", correlation_id)
    spec = DefinitionSpec.model_validate(body.model_dump(exclude={"tenant_id"}))
    definition, version = lifecycle.create(
        conn, caller, KIND, tenant_id, lambda: _draft(conn, caller, tenant_id, spec, report_name=spec.report_name),
        correlation_id=correlation_id, now=now or lifecycle.utcnow())
    return DefinitionView(definition, version)


def list_definitions(conn, caller: Authenticated, *, status: str | None = None, vertical: str | None = None,
                     cursor: str | None = None, limit: int = 50) -> tuple[list[DefinitionView], str | None]:
    invalid_only = status == store.INVALID

    def in_vertical(version: DefinitionVersion) -> bool:
        scope = version.spec.vertical_scope
        return vertical is None or not scope or vertical in scope

    with conn:
        found, next_cursor = lifecycle.page(conn, KIND, caller.principal, status=None if invalid_only else status,
                                            cursor=cursor, limit=limit, keep=in_vertical,
                                            only_set="invalid_since" if invalid_only else None)
    return [DefinitionView(d, v) for d, v in found], next_cursor


def get_definition(conn, caller: Authenticated, definition_id: str, version: int | None = None) -> DefinitionView:
    with conn:
        return DefinitionView(*lifecycle.shown(conn, KIND, caller.principal, definition_id, version))


def update_definition(conn, caller: Authenticated, definition_id: str, changes: DefinitionUpdate, *,
                      if_match: str | None = None, correlation_id: str | None = None,
                      now: dt.datetime | None = None) -> DefinitionView:
    """A new version; the active version (if any) keeps running until the new one is activated."""
    given = changes.model_dump(exclude_none=True)

    def revise(definition: Definition, current: DefinitionVersion) -> Draft:
        spec = DefinitionSpec.model_validate({**current.spec.model_dump(), **given})
        return _draft(conn, caller, definition.tenant_id, spec)

    return DefinitionView(*lifecycle.update(conn, caller, KIND, definition_id, given, revise, if_match=if_match,
                                            correlation_id=correlation_id, now=now or lifecycle.utcnow()))


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

    def validates(definition: Definition, version: DefinitionVersion) -> None:
        result = checks.check(conn, caller.principal, definition, version)
        if not result.valid:
            raise Invalid("the definition does not validate: " + "; ".join(result.errors))

    return DefinitionView(*lifecycle.activate(conn, caller, KIND, definition_id, validates,
                                              correlation_id=correlation_id, now=now or lifecycle.utcnow()))


def retire_definition(conn, caller: Authenticated, definition_id: str, status: str, reason: Retirement, *,
                      correlation_id: str | None = None, now: dt.datetime | None = None) -> DefinitionView:
    definition = lifecycle.stop(conn, caller, KIND, definition_id, status, reason, correlation_id=correlation_id,
                                now=now or lifecycle.utcnow())
    return DefinitionView(definition, store.get_version(conn, definition_id, definition.current_version))
