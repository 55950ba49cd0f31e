"""Definitions invalidated by a registry or policy change, found when the change is made.

A saved definition runs only while it validates for its owner (services.definition_checks): its
entities active, every field it uses still allowed and within the owner's clearance, the
registry unchanged since it was saved. A registry entity's change (PATCH, deprecate, archive,
activate) or a change of its owner's roles or scopes can break that. The service that makes such
a change calls `revalidate` in its own transaction: each affected definition is marked invalid
with the fields and the reason (or cleared when it validates again), and audited. Runs and
schedules refuse a definition marked invalid, with that reason; `?status=invalid` lists them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from orchestration.access import audit, clearance, policy
from orchestration.catalog import definition_store as store
from orchestration.catalog.definitions import Definition
from orchestration.errors import Conflict, Invalid
from orchestration.registry import builder
from orchestration.registry import store as registry_store
from orchestration.services import definition_checks as checks


@dataclass(frozen=True)
class Finding:
    """Whether a definition runs for its owner now; if not, the fields at fault and why."""

    valid: bool
    fields: tuple[str, ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class Revalidated:
    definition_id: str
    invalid: bool
    fields: tuple[str, ...]
    reason: str | None


def refusal(definition: Definition) -> Conflict:
    """What a run or a schedule tick of a definition marked invalid answers."""
    fields = f" (fields: {', '.join(definition.invalid_fields)})" if definition.invalid_fields else ""
    return Conflict(f"report definition {definition.definition_id} is invalid since "
                    f"{definition.invalid_since:%Y-%m-%d %H:%M}Z{fields}: {definition.invalid_reason}")


def find(conn, definition: Definition) -> Finding | None:
    """The version runs use (else the newest), checked for the definition's owner as things are now;
    None when the owner is gone or deactivated (runs are checked for their requester all the same,
    and an owner's deactivation is not a change of what the definition may read)."""
    version = store.get_version(conn, definition.definition_id, definition.active_version or definition.current_version)
    owner = policy.get_principal(conn, definition.created_by)
    if owner is None or not owner.active:
        return None
    result = checks.check(conn, owner, definition, version)
    if result.valid:
        return Finding(True)
    try:
        entities = checks.entities_of(conn, version.spec, definition.tenant_id)
        fields = builder.unusable_fields(version.spec, entities, clearance.viewer_for(owner))
    except Invalid:  # an entity is gone altogether: every field of it is
        gone = {e for e in version.spec.entity_ids if not _exists(conn, e)}
        fields = [f for f in version.spec.fields if f.split(".", 1)[0] in gone] or list(version.spec.fields)
    return Finding(False, tuple(fields), "; ".join(result.errors))


def _exists(conn, entity_id: str) -> bool:
    return registry_store.get(conn, entity_id) is not None


def revalidate(conn, *, actor: str, cause: str, entity_ids: list[str] | None = None, owner: str | None = None,
               correlation_id: str | None = None, now: dt.datetime | None = None) -> list[Revalidated]:
    """Re-check the definitions that read these entities (or that this principal owns), in the
    caller's transaction: mark the ones that no longer validate, clear the ones that do again.
    Returns the definitions whose marking changed."""
    now = now or dt.datetime.now(dt.UTC)
    changed = []
    for definition_id in store.ids_using(conn, entity_ids=entity_ids, created_by=owner):
        definition = store.get(conn, definition_id, for_update=True)
        finding = find(conn, definition)
        if finding is None:
            continue
        if finding.valid and definition.invalid:
            store.update(conn, definition_id, {"invalid_since": None, "invalid_reason": None, "invalid_fields": []},
                         now=now)
            action = "definition.revalidated"
        elif not finding.valid and (not definition.invalid or definition.invalid_reason != finding.reason
                                    or definition.invalid_fields != finding.fields):
            store.update(conn, definition_id, {"invalid_since": definition.invalid_since or now,
                                               "invalid_reason": finding.reason,
                                               "invalid_fields": list(finding.fields)}, now=now)
            action = "definition.invalidated"
        else:
            continue
        audit.record(conn, actor=actor, action=action, target=definition_id, outcome="succeeded",
                     tenant_id=definition.tenant_id, correlation_id=correlation_id,
                     details={"cause": cause, "fields": list(finding.fields), "reason": finding.reason})
        changed.append(Revalidated(definition_id, not finding.valid, finding.fields, finding.reason))
    return changed
