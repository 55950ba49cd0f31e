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
from orchestration.errors import Denied, Invalid, NotFound
from orchestration.governance import versions
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
from orchestration.services import versioned_lifecycle as lifecycle
from orchestration.services.versioned_lifecycle import Draft, Kind, Stop

PAGE_MAX = lifecycle.PAGE_MAX


@dataclass(frozen=True)
class PipelineView:
    pipeline: Pipeline
    version: PipelineVersion


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


KIND = Kind(table=store.TABLE, noun="pipeline", target="pipeline", audit_name="pipeline",
            stops={"paused": Stop(frozenset({"active"}), "paused_at"),
                   "archived": Stop(frozenset({"draft", "active", "paused"}), "archived_at")},
            listed=("draft", "active", "paused"), activation_clears_reason=True)


def visible(conn, principal: policy.Principal, pipeline_id: str) -> Pipeline:
    return lifecycle.visible(conn, KIND, principal, pipeline_id)


def _draft(conn, principal: policy.Principal, tenant_id: str, spec: PipelineSpec, **details: object) -> Draft:
    _check_members(conn, principal, tenant_id, spec)
    return Draft(spec, details=details)


def create_pipeline(conn, caller: Authenticated, body: PipelineCreate, *, correlation_id: str | None = None,
                    now: dt.datetime | None = None) -> PipelineView:
    tenant_id = checks.tenant_for_new(caller, body.tenant_id, "pipeline")
    checks.authorize(conn, caller, "define", tenant_id, f"pipeline {body.pipeline_name!r}", correlation_id)
    spec = PipelineSpec.model_validate(body.model_dump(exclude={"tenant_id"}))

    def draft() -> Draft:
        return _draft(conn, caller.principal, tenant_id, spec, pipeline_name=spec.pipeline_name,
                      members=list(spec.members), destination=spec.destination.recipient(None).identity)

    return PipelineView(*lifecycle.create(conn, caller, KIND, tenant_id, draft, correlation_id=correlation_id,
                                          now=now or lifecycle.utcnow()))


def list_pipelines(conn, caller: Authenticated, *, status: str | None = None, cursor: str | None = None,
                   limit: int = 50) -> tuple[list[PipelineView], str | None]:
    with conn:
        found, next_cursor = lifecycle.page(conn, KIND, caller.principal, status=status, cursor=cursor, limit=limit)
    return [PipelineView(p, v) for p, v in found], next_cursor


def get_pipeline(conn, caller: Authenticated, pipeline_id: str, version: int | None = None) -> PipelineView:
    with conn:
        return PipelineView(*lifecycle.shown(conn, KIND, caller.principal, pipeline_id, version))


def update_pipeline(conn, caller: Authenticated, pipeline_id: str, changes: PipelineUpdate, *,
                    if_match: str | None = None, correlation_id: str | None = None,
                    now: dt.datetime | None = None) -> PipelineView:
    """A new version; the active version (if any) keeps running until the new one is activated."""
    given = changes.model_dump(exclude_none=True)

    def revise(pipeline: Pipeline, current: PipelineVersion) -> Draft:
        spec = PipelineSpec.model_validate({**current.spec.model_dump(), **given})
        return _draft(conn, caller.principal, pipeline.tenant_id, spec)

    return PipelineView(*lifecycle.update(conn, caller, KIND, pipeline_id, given, revise, if_match=if_match,
                                          correlation_id=correlation_id, now=now or lifecycle.utcnow()))


def activate_pipeline(conn, caller: Authenticated, pipeline_id: str, *, correlation_id: str | None = None,
                      now: dt.datetime | None = None) -> PipelineView:
    """An approver who did not write the newest version activates it (or resumes a paused pipeline)."""

    def members_allowed(pipeline: Pipeline, version: PipelineVersion) -> None:
        _check_members(conn, caller.principal, pipeline.tenant_id, version.spec)

    return PipelineView(*lifecycle.activate(conn, caller, KIND, pipeline_id, members_allowed,
                                            correlation_id=correlation_id, now=now or lifecycle.utcnow()))


def stop_pipeline(conn, caller: Authenticated, pipeline_id: str, status: str, reason: Retirement, *,
                  correlation_id: str | None = None, now: dt.datetime | None = None) -> PipelineView:
    """Pause (activate resumes it) or archive (final), with a reason; a batch already running finishes."""
    pipeline = lifecycle.stop(conn, caller, KIND, pipeline_id, status, reason, correlation_id=correlation_id,
                              now=now or lifecycle.utcnow())
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
