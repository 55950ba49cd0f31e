"""The lifecycle of an object with versions, written once for report definitions, chart
definitions and export pipelines: create (draft v1), show a version, list a page, change (a new
version, honouring If-Match), activate (an approver who did not write the version), and stop it
(deprecate or pause, archive) with a reason.

Each resource describes itself once (a Kind: its tables, its nouns, its audit name, the stops it
knows) and supplies its own checks as small functions: what a new version's spec is and what is
saved beside it (a Draft), and whether a version may be activated (`ready`). Audit actions are
`<audit_name>.create|update|activate|<status>`, and `approve.denied` for an author approving their
own version, with the request's correlation id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple

from pydantic import BaseModel

from orchestration.access import audit, policy
from orchestration.access.tokens import Authenticated
from orchestration.errors import Conflict, Denied, Invalid, NotFound
from orchestration.governance import versioned
from orchestration.governance.versioned import Retirement
from orchestration.governance.versioned_store import H, V, VersionedTable
from orchestration.services import definition_checks as checks

PAGE_MAX = 200


class Stop(NamedTuple):
    """A move out of use: the statuses it may start from and the header column stamped with its time."""

    allowed: frozenset[str]
    stamp: str


RETIREMENTS = {"deprecated": Stop(frozenset({"active"}), "deprecated_at"),
               "archived": Stop(frozenset({"draft", "active", "deprecated"}), "archived_at")}


@dataclass(frozen=True)
class Kind(Generic[H, V]):
    table: VersionedTable[H, V]
    noun: str  # in messages: "no {noun} {id}", "{noun} {id} is archived ..."
    target: str  # what a policy check names: "{target} {id}"
    audit_name: str  # the audit actions' prefix
    stops: Mapping[str, Stop]
    # a list shows these when no status is asked for (all but archived)
    listed: tuple[str, ...] = ("draft", "active", "deprecated")
    # a pause's reason no longer holds once the object runs again
    activation_clears_reason: bool = False


@dataclass(frozen=True)
class Draft:
    """A version about to be saved: its spec, the version table's other columns (a validation hash,
    the source version ...), and what the audit row adds to the version number."""

    spec: BaseModel
    columns: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def record(conn, caller: Authenticated, kind: Kind, verb: str, object_id: str, tenant_id: str,
           correlation_id: str | None, *, outcome: str = "succeeded", **details: Any) -> None:
    audit.record(conn, actor=checks.who(caller), action=f"{kind.audit_name}.{verb}", target=object_id,
                 outcome=outcome, tenant_id=tenant_id, correlation_id=correlation_id, details=details)


def visible(conn, kind: Kind[H, V], principal: policy.Principal, object_id: str) -> H:
    """The object, or NotFound when it does not exist or belongs to a tenant the principal is not in."""
    header = kind.table.get(conn, object_id)
    if header is None or not principal.member_of(header.tenant_id):
        raise NotFound(f"no {kind.noun} {object_id}")
    return header


def changeable(conn, caller: Authenticated, kind: Kind[H, V], object_id: str, action: str,
               correlation_id: str | None) -> H:
    header = visible(conn, kind, caller.principal, object_id)
    checks.authorize(conn, caller, action, header.tenant_id, f"{kind.target} {object_id}", correlation_id)
    return header


def locked(conn, kind: Kind[H, V], object_id: str, if_match: str | None) -> H:
    """The header row locked for this transaction; StaleVersion (412) or Conflict (archived) first."""
    header = kind.table.get(conn, object_id, for_update=True)
    versioned.ensure_changeable(f"{kind.noun} {object_id}", status=header.status, version=header.current_version,
                                current_etag=header.etag, if_match=if_match)
    return header


def shown(conn, kind: Kind[H, V], principal: policy.Principal, object_id: str, version: int | None) -> tuple[H, V]:
    """The object and one of its versions (default: the newest), in the caller's transaction."""
    header = visible(conn, kind, principal, object_id)
    wanted = version or header.current_version
    if not 1 <= wanted <= header.current_version:
        raise NotFound(f"{kind.noun} {object_id} has no version {wanted}")
    return header, kind.table.get_version(conn, object_id, wanted)


def page(conn, kind: Kind[H, V], principal: policy.Principal, *, status: str | None, cursor: str | None, limit: int,
         only_set: str | None = None, keep: Callable[[V], bool] | None = None) -> tuple[list[tuple[H, V]], str | None]:
    """The caller's tenants' objects with their newest versions, in id order after the cursor, and
    the next cursor. `keep` filters on the version, reading on until the page is full."""
    if not 1 <= limit <= PAGE_MAX:
        raise Invalid(f"limit must be between 1 and {PAGE_MAX}")
    tenants = None if policy.ALL_TENANTS in principal.tenants else sorted(principal.tenants)
    statuses = [status] if status else list(kind.listed)
    found: list[tuple[H, V]] = []
    after = cursor
    while len(found) <= limit:
        batch = kind.table.list_for(conn, tenants, statuses=statuses, after=after, limit=limit + 1, only_set=only_set)
        for header in batch:
            version = kind.table.get_version(conn, header.object_id, header.current_version)
            if keep is None or keep(version):
                found.append((header, version))
        if len(batch) <= limit:
            break
        after = batch[-1].object_id
    more = len(found) > limit
    found = found[:limit]
    return found, (found[-1][0].object_id if more and found else None)


def create(conn, caller: Authenticated, kind: Kind[H, V], tenant_id: str, draft: Callable[[], Draft], *,
           correlation_id: str | None, now: dt.datetime) -> tuple[H, V]:
    """Draft version 1, in one transaction with the resource's checks (`draft` raises to refuse)."""
    with conn:
        new = draft()
        header = kind.table.create(conn, tenant_id=tenant_id, created_by=checks.who(caller), now=now)
        version = kind.table.add_version(conn, header.object_id, 1, new.spec, created_by=checks.who(caller),
                                         now=now, **new.columns)
        record(conn, caller, kind, "create", header.object_id, tenant_id, correlation_id, **new.details)
    return header, version


def append_version(conn, caller: Authenticated, kind: Kind[H, V], header: H, new: Draft,
                   now: dt.datetime) -> tuple[H, V]:
    """The next version, made the newest (the active one, if any, stays until an approver activates)."""
    object_id, number = header.object_id, header.current_version + 1
    version = kind.table.add_version(conn, object_id, number, new.spec, created_by=checks.who(caller), now=now,
                                     **new.columns)
    return kind.table.update(conn, object_id, {"current_version": number}, now=now), version


def update(conn, caller: Authenticated, kind: Kind[H, V], object_id: str, given: Mapping[str, Any],
           revise: Callable[[H, V], Draft], *, if_match: str | None, correlation_id: str | None,
           now: dt.datetime) -> tuple[H, V]:
    """A new version from the newest one and the fields `given`; `revise` makes and checks it."""
    changeable(conn, caller, kind, object_id, "define", correlation_id)
    if not given:
        raise Invalid("nothing to change")
    with conn:
        header = locked(conn, kind, object_id, if_match)
        new = revise(header, kind.table.get_version(conn, object_id, header.current_version))
        header, version = append_version(conn, caller, kind, header, new, now)
        record(conn, caller, kind, "update", object_id, header.tenant_id, correlation_id, version=version.version,
               changed=sorted(given), **new.details)
    return header, version


def activate(conn, caller: Authenticated, kind: Kind[H, V], object_id: str, ready: Callable[[H, V], None], *,
             correlation_id: str | None, now: dt.datetime) -> tuple[H, V]:
    """The approval step: an approver who did not write the newest version, which `ready` accepts
    (it raises Invalid or Conflict to refuse)."""
    header = changeable(conn, caller, kind, object_id, "approve", correlation_id)
    author = kind.table.get_version(conn, object_id, header.current_version).created_by
    if author == checks.who(caller):
        reason = f"{author} wrote version {header.current_version}: activation needs a second person"
        audit.record_now(conn, actor=author, action="approve.denied", target=object_id, outcome="denied",
                         tenant_id=header.tenant_id, correlation_id=correlation_id, details={"reason": reason})
        raise Denied(reason)
    with conn:
        header = locked(conn, kind, object_id, None)
        version = kind.table.get_version(conn, object_id, header.current_version)
        if version.created_by == checks.who(caller):  # a version added since the check above
            raise Conflict(f"{kind.noun} {object_id} changed while it was being activated; try again")
        if header.status == "active" and header.active_version == version.version:
            raise Conflict(f"version {version.version} of {object_id} is active already")
        ready(header, version)
        kind.table.mark_version_active(conn, object_id, version.version, by=checks.who(caller), now=now)
        changes: dict[str, object] = {"status": "active", "active_version": version.version, "activated_at": now}
        if kind.activation_clears_reason:
            changes |= {"reason_code": None, "reason_text": None}
        header = kind.table.update(conn, object_id, changes, now=now)
        record(conn, caller, kind, "activate", object_id, header.tenant_id, correlation_id, version=version.version,
               author=version.created_by)
        return header, kind.table.get_version(conn, object_id, version.version)


def stop(conn, caller: Authenticated, kind: Kind[H, V], object_id: str, status: str, reason: Retirement, *,
         correlation_id: str | None, now: dt.datetime) -> H:
    """Deprecate, pause or archive (one of kind.stops), with a reason."""
    changeable(conn, caller, kind, object_id, "define", correlation_id)
    with conn:
        header = locked(conn, kind, object_id, None)
        allowed, stamp = kind.stops[status]
        if header.status not in allowed:
            raise Conflict(f"{kind.noun} {object_id} is {header.status}; it cannot become {status}")
        header = kind.table.update(conn, object_id, {"status": status, stamp: now, "reason_code": reason.reason_code,
                                                     "reason_text": reason.reason_text}, now=now)
        record(conn, caller, kind, status, object_id, header.tenant_id, correlation_id, **reason.model_dump())
    return header
