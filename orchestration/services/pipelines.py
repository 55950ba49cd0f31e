"""Export pipelines: create, list, show, update (a new version), activate, pause, archive.
Each use case owns its transaction and is audited with the request's correlation id; running a
pipeline is services/pipeline_runs.py.

A pipeline belongs to one tenant, taken from the caller's verified membership; another tenant's
pipeline is NotFound. Its members must be definitions of that tenant or templates it may run,
checked when a version is saved and again at every run. Activation is an approver's step (a
second person: the approver did not write the version), as for report definitions: a pipeline
sends reports out of the product.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from orchestration.access import audit, policy
from orchestration.access.tokens import Authenticated
from orchestration.errors import Conflict, Denied, Invalid, NotFound
from orchestration.governance import versioned, versions
from orchestration.governance.lifecycle import GovernanceError
from orchestration.governance.versioned import Retirement
from orchestration.pipelines import store
from orchestration.pipelines.models import (
    Pipeline,
    PipelineCreate,
    PipelineSpec,
    PipelineUpdate,
    PipelineVersion,
    is_definition,
)
from orchestration.services import definition_checks as checks

PAGE_MAX = 200


@dataclass(frozen=True)
class PipelineView:
    pipeline: Pipeline
    version: PipelineVersion


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def member_refusal(conn, principal: policy.Principal, tenant_id: str, member: str) -> str | None:
    """Why a member cannot be part of a pipeline of this tenant now, or None."""
    if is_definition(member):
        try:
            definition = checks.visible(conn, principal, member)
        except NotFound as exc:
            return str(exc)
        if definition.tenant_id != tenant_id:
            return f"no report definition {member}"  # another tenant's: as if it did not exist
        if definition.status == "archived":
            return f"report definition {member} is archived"
        return None
    try:
        versions.resolve(conn, member, tenant_id=tenant_id)
    except (GovernanceError, NotFound, Invalid) as exc:
        return str(exc)
    return None


def _check_members(conn, principal: policy.Principal, tenant_id: str, spec: PipelineSpec) -> None:
    refusals = [r for m in spec.members if (r := member_refusal(conn, principal, tenant_id, m))]
    if refusals:
        raise Invalid("members: " + "; ".join(refusals))


def visible(conn, principal: policy.Principal, pipeline_id: str) -> Pipeline:
    pipeline = store.get(conn, pipeline_id)
    if pipeline is None or not principal.member_of(pipeline.tenant_id):
        raise NotFound(f"no pipeline {pipeline_id}")
    return pipeline


def create_pipeline(conn, caller: Authenticated, body: PipelineCreate, *, correlation_id: str | None = None,
                    now: dt.datetime | None = None) -> PipelineView:
    now = now or _utcnow()
    tenant_id = checks.tenant_for_new(caller, body.tenant_id, "pipeline")
    checks.authorize(conn, caller, "define", tenant_id, f"pipeline {body.pipeline_name!r}", correlation_id)
    spec = PipelineSpec.model_validate(body.model_dump(exclude={"tenant_id"}))
    with conn:
        _check_members(conn, caller.principal, tenant_id, spec)
        pipeline = store.create(conn, tenant_id=tenant_id, created_by=checks.who(caller), now=now)
        version = store.add_version(conn, pipeline.pipeline_id, 1, spec, created_by=checks.who(caller), now=now)
        audit.record(conn, actor=checks.who(caller), action="pipeline.create", target=pipeline.pipeline_id,
                     outcome="succeeded", tenant_id=tenant_id, correlation_id=correlation_id,
                     details={"pipeline_name": spec.pipeline_name, "members": list(spec.members),
                              "destination": spec.destination.recipient(None).identity})
    return PipelineView(pipeline, version)


def list_pipelines(conn, caller: Authenticated, *, status: str | None = None, cursor: str | None = None,
                   limit: int = 50) -> tuple[list[PipelineView], str | None]:
    if not 1 <= limit <= PAGE_MAX:
        raise Invalid(f"limit must be between 1 and {PAGE_MAX}")
    principal = caller.principal
    tenants = None if policy.ALL_TENANTS in principal.tenants else sorted(principal.tenants)
    statuses = [status] if status else ["draft", "active", "paused"]
    with conn:
        found = store.list_for(conn, tenants, statuses=statuses, after=cursor, limit=limit + 1)
        views = [PipelineView(p, store.get_version(conn, p.pipeline_id, p.current_version)) for p in found[:limit]]
    return views, (views[-1].pipeline.pipeline_id if len(found) > limit else None)


def get_pipeline(conn, caller: Authenticated, pipeline_id: str, version: int | None = None) -> PipelineView:
    with conn:
        pipeline = visible(conn, caller.principal, pipeline_id)
        wanted = version or pipeline.current_version
        if not 1 <= wanted <= pipeline.current_version:
            raise NotFound(f"pipeline {pipeline_id} has no version {wanted}")
        return PipelineView(pipeline, store.get_version(conn, pipeline_id, wanted))


def _changeable(conn, caller: Authenticated, pipeline_id: str, action: str, correlation_id: str | None) -> Pipeline:
    pipeline = visible(conn, caller.principal, pipeline_id)
    checks.authorize(conn, caller, action, pipeline.tenant_id, f"pipeline {pipeline_id}", correlation_id)
    return pipeline


def _locked(conn, pipeline_id: str, if_match: str | None) -> Pipeline:
    pipeline = store.get(conn, pipeline_id, for_update=True)
    versioned.ensure_changeable(f"pipeline {pipeline_id}", status=pipeline.status, version=pipeline.current_version,
                                current_etag=pipeline.etag, if_match=if_match)
    return pipeline


def update_pipeline(conn, caller: Authenticated, pipeline_id: str, changes: PipelineUpdate, *,
                    if_match: str | None = None, correlation_id: str | None = None,
                    now: dt.datetime | None = None) -> PipelineView:
    """A new version; the active version (if any) keeps running until the new one is activated."""
    now = now or _utcnow()
    _changeable(conn, caller, pipeline_id, "define", correlation_id)
    given = changes.model_dump(exclude_none=True)
    if not given:
        raise Invalid("nothing to change")
    with conn:
        pipeline = _locked(conn, pipeline_id, if_match)
        current = store.get_version(conn, pipeline_id, pipeline.current_version)
        spec = PipelineSpec.model_validate({**current.spec.model_dump(), **given})
        _check_members(conn, caller.principal, pipeline.tenant_id, spec)
        number = pipeline.current_version + 1
        version = store.add_version(conn, pipeline_id, number, spec, created_by=checks.who(caller), now=now)
        pipeline = store.update(conn, pipeline_id, {"current_version": number}, now=now)
        audit.record(conn, actor=checks.who(caller), action="pipeline.update", target=pipeline_id, outcome="succeeded",
                     tenant_id=pipeline.tenant_id, correlation_id=correlation_id,
                     details={"version": number, "changed": sorted(given)})
    return PipelineView(pipeline, version)


def activate_pipeline(conn, caller: Authenticated, pipeline_id: str, *, correlation_id: str | None = None,
                      now: dt.datetime | None = None) -> PipelineView:
    """An approver who did not write the newest version activates it (or resumes a paused pipeline)."""
    now = now or _utcnow()
    pipeline = _changeable(conn, caller, pipeline_id, "approve", correlation_id)
    author = store.get_version(conn, pipeline_id, pipeline.current_version).created_by
    if author == checks.who(caller):
        reason = f"{author} wrote version {pipeline.current_version}: activation needs a second person"
        audit.record_now(conn, actor=author, action="approve.denied", target=pipeline_id, outcome="denied",
                         tenant_id=pipeline.tenant_id, correlation_id=correlation_id, details={"reason": reason})
        raise Denied(reason)
    with conn:
        pipeline = _locked(conn, pipeline_id, None)
        version = store.get_version(conn, pipeline_id, pipeline.current_version)
        if pipeline.status == "active" and pipeline.active_version == version.version:
            raise Conflict(f"version {version.version} of {pipeline_id} is active already")
        _check_members(conn, caller.principal, pipeline.tenant_id, version.spec)
        store.mark_version_active(conn, pipeline_id, version.version, by=checks.who(caller), now=now)
        pipeline = store.update(conn, pipeline_id, {"status": "active", "active_version": version.version,
                                                    "activated_at": now, "reason_code": None, "reason_text": None},
                                now=now)
        audit.record(conn, actor=checks.who(caller), action="pipeline.activate", target=pipeline_id,
                     outcome="succeeded", tenant_id=pipeline.tenant_id, correlation_id=correlation_id,
                     details={"version": version.version, "author": version.created_by})
    return PipelineView(pipeline, store.get_version(conn, pipeline_id, version.version))


_STOP = {"paused": ({"active"}, "paused_at"), "archived": ({"draft", "active", "paused"}, "archived_at")}


def stop_pipeline(conn, caller: Authenticated, pipeline_id: str, status: str, reason: Retirement, *,
                  correlation_id: str | None = None, now: dt.datetime | None = None) -> PipelineView:
    """Pause (activate resumes it) or archive (final), with a reason; a batch already running finishes."""
    now = now or _utcnow()
    _changeable(conn, caller, pipeline_id, "define", correlation_id)
    with conn:
        pipeline = _locked(conn, pipeline_id, None)
        allowed, stamp = _STOP[status]
        if pipeline.status not in allowed:
            raise Conflict(f"pipeline {pipeline_id} is {pipeline.status}; it cannot become {status}")
        pipeline = store.update(conn, pipeline_id, {"status": status, stamp: now, "reason_code": reason.reason_code,
                                                    "reason_text": reason.reason_text}, now=now)
        audit.record(conn, actor=checks.who(caller), action=f"pipeline.{status}", target=pipeline_id,
                     outcome="succeeded", tenant_id=pipeline.tenant_id, correlation_id=correlation_id,
                     details=reason.model_dump())
    return PipelineView(pipeline, store.get_version(conn, pipeline_id, pipeline.current_version))


def operator(conn, actor: str) -> Authenticated:
    """The CLI's `--as` for an operator on the host: a known, active principal with its roles
    (no token, so no scopes narrow it); anyone else is refused, and the refusal audited."""
    principal = policy.get_principal(conn, actor)
    if principal is None or not principal.active:
        reason = f"{actor} is not an active principal (see `nexus-reports principals list`)"
        audit.record_now(conn, actor=actor, action="pipeline.denied", target="pipelines", outcome="denied",
                         details={"reason": reason})
        raise Denied(reason)
    return Authenticated(principal, "cli", frozenset())
