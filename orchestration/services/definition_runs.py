"""Running saved definitions: preview, submit a run, prepare its execution, follow it, download.

A run of a definition is a report run like any other (services.runs, runs.engine): the
definition's active version is compiled for the requester into a one-section template
(catalog.definition_template) and admitted; a worker executes it through Dagster's `report_run`
job, which asks `prepare_execution` to compile it again, under the rules as they are then. The
row scope (tenant, verticals, regions, consent) is the intersection of what the definition was
saved under and what the requester holds, and is enforced by row-level security in the
database, whatever the SQL says.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from orchestration.access import audit, clearance, policy
from orchestration.access.tokens import Authenticated
from orchestration.artifacts import index as artifact_index
from orchestration.catalog import definition_store as store
from orchestration.catalog import definition_template
from orchestration.catalog.definitions import Definition, DefinitionVersion, Filter, RunParameters
from orchestration.catalog.templates import Template
from orchestration.db import warehouse
from orchestration.db.report_context import ReaderScope
from orchestration.errors import Conflict, Denied, Invalid, NotFound
from orchestration.governance import definition_lifecycle
from orchestration.governance.lifecycle import NotRunnable
from orchestration.governance.versioned import Reason
from orchestration.links.tokens import public_base
from orchestration.registry import builder
from orchestration.runs import admission, idempotency, records, supervisor, worker
from orchestration.runs.failures import AlreadyActive
from orchestration.runs.periods import RequestError, utc_today
from orchestration.runs.request import ReportRequest
from orchestration.runs.run_record import RunOrigin, RunRecord
from orchestration.services import definition_checks as checks
from orchestration.services import definition_validity as validity
from orchestration.services import links as link_service

PREVIEW_DEFAULT, PREVIEW_MAX = 100, 1000
DEFAULT_WINDOW_DAYS = 30
ROOT_ROLE = "root"
DOWNLOAD_LIFETIME = dt.timedelta(minutes=15)
ConsentReason = Literal["LEGAL_OBLIGATION", "REGULATORY_REQUEST", "INCIDENT_INVESTIGATION", "DATA_SUBJECT_REQUEST",
                        "OTHER"]


class ConsentOverride(Reason):
    """Root only: include consent-withdrawn subjects, for a reason that is logged."""

    reason_code: ConsentReason


class RunOrder(BaseModel):
    """What a caller asks of a run: one format, a window, and (root only) the consent override."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal["csv", "xlsx", "json"] = "csv"
    parameters: RunParameters = RunParameters()
    include_withdrawn: ConsentOverride | None = None


@dataclass(frozen=True)
class Preview:
    columns: tuple[builder.OutputColumn, ...]
    rows: list[tuple]
    truncated: bool


@dataclass(frozen=True)
class Download:
    url: str
    expires_at: dt.datetime
    fmt: str


def scope_for(principal: policy.Principal, version: DefinitionVersion) -> ReaderScope:
    """The rows a run of this version may read: the saved context within the requester's scopes
    (consent-withdrawn subjects excluded; only an audited override includes them). Root is not
    narrowed by its own scopes (the specification's full datasets for ROOT)."""
    context = version.security_context
    if ROOT_ROLE in principal.roles:
        return ReaderScope(tuple(context.verticals) or None, tuple(context.geo_scopes) or None)
    return ReaderScope(checks.narrowed(context.verticals, principal.verticals, "verticals"),
                       checks.narrowed(context.geo_scopes, principal.geo_scopes, "regions"))


def _window(parameters: RunParameters, today: dt.date) -> tuple[dt.date, dt.date]:
    """[start, end): the given days, or the last DEFAULT_WINDOW_DAYS whole days."""
    return parameters.half_open() or (today - dt.timedelta(days=DEFAULT_WINDOW_DAYS), today)


def _consent(conn, caller: Authenticated, override: ConsentOverride | None, tenant_id: str, target: str,
             correlation_id: str | None) -> str | None:
    if override is None:
        return None
    checks.authorize(conn, caller, "include_withdrawn", tenant_id, target, correlation_id)
    audit.record_now(conn, actor=checks.who(caller), action="consent.override", target=target, outcome="allowed",
                     tenant_id=tenant_id, correlation_id=correlation_id, details=override.model_dump())
    return override.logged()


def plan(conn, principal: policy.Principal, definition: Definition, version: DefinitionVersion, *,
         window: tuple[dt.date, dt.date], formats: tuple[str, ...], trigger: str = "manual",
         include_withdrawn: str | None = None, correlation_id: str | None = None) -> tuple[Template, ReportRequest]:
    """The template and request of a run of this version for this principal, validated now (audited,
    with the correlation id of the request that asked for the run)."""
    if definition.invalid:  # marked by a registry or policy change: refused with that reason
        raise validity.refusal(definition)
    result = checks.check(conn, principal, definition, version)
    audit.record_now(conn, actor=principal.principal_id, action="run.validated",
                     target=f"report definition {definition.definition_id}",
                     outcome="succeeded" if result.valid else "failed", tenant_id=definition.tenant_id,
                     correlation_id=correlation_id,
                     details={"version": version.version, "trigger": trigger, "validation_hash": result.validation_hash,
                              "errors": list(result.errors)})
    if not result.valid:
        raise Conflict("the definition is not valid now: " + "; ".join(result.errors))
    scope = scope_for(principal, version)
    _, compiled = checks.compile_spec(conn, clearance.viewer_for(principal), version.spec, definition.tenant_id,
                                      for_run=True)
    template = definition_template.template_for(
        definition, version, sql=compiled.sql, params=compiled.params,
        columns=[(c.name, c.type, c.classification) for c in compiled.columns])
    request = ReportRequest(
        template_key=template.key, template_version=template.version, tenant_id=definition.tenant_id,
        window_start=window[0], window_end=window[1], requester=principal.principal_id, trigger=trigger,
        formats=formats, filters=dict(compiled.params), verticals=scope.verticals, geo_scopes=scope.geo_scopes,
        include_withdrawn=include_withdrawn)
    return template, request


def _runnable_version(conn, definition: Definition) -> DefinitionVersion:
    try:
        number = definition_lifecycle.active_version(definition)
    except NotRunnable as exc:
        raise Conflict(str(exc)) from None
    return store.get_version(conn, definition.definition_id, number)


def submit_run(conn, caller: Authenticated, definition_id: str, order: RunOrder, *,
               idempotency_key: str | None = None, correlation_id: str | None = None,
               launch: Callable[[str], object] = worker.launch, trigger: str = "manual",
               origin: RunOrigin = RunOrigin(), today: dt.date | None = None) -> tuple[RunRecord, bool]:
    """Admit a run of the definition's active version and hand it to a worker.
    Returns (the run, whether it is new): the same Idempotency-Key, or the same request while its
    run is still active, returns that run. A schedule tick gives its trigger, origin (schedule,
    tick, the tenant it vouches for) and the tick's day, which ends the default window."""
    definition = checks.visible(conn, caller.principal, definition_id)
    target = f"report definition {definition_id}"
    checks.authorize(conn, caller, "run", definition.tenant_id, target, correlation_id)
    fingerprint = idempotency.fingerprint(definition_id, order.model_dump(mode="json"))
    if idempotency_key:
        with conn:
            known = idempotency.find(conn, checks.who(caller), idempotency_key, fingerprint)
        if known is not None:
            return records.get_run(conn, known), False
    try:
        version = _runnable_version(conn, definition)
        withdrawn = _consent(conn, caller, order.include_withdrawn, definition.tenant_id, target, correlation_id)
        template, request = plan(conn, caller.principal, definition, version, formats=(order.format,),
                                 window=_window(order.parameters, today or utc_today()), trigger=trigger,
                                 include_withdrawn=withdrawn, correlation_id=correlation_id)
        run_id, created = admission.admit(conn, template, request,
                                          dataclasses.replace(origin, correlation_id=correlation_id)), True
    except AlreadyActive as active:
        run_id, created = active.run_id, False
    except (Conflict, Denied, RequestError) as exc:
        admission.audit_refusal(conn, requester=checks.who(caller), target=target, reason=str(exc),
                                tenant_id=definition.tenant_id, correlation_id=correlation_id)
        raise
    if idempotency_key:
        with conn:
            run_id = idempotency.remember(conn, checks.who(caller), idempotency_key, fingerprint, run_id)
    if created:
        launch(run_id)
    return records.get_run(conn, run_id), created


def prepare_execution(conn, run_id: str) -> tuple[Template, ReportRequest]:
    """For the worker: the admitted run's template, compiled again now for its requester, with the
    request it was admitted with. Anything that no longer holds fails the run closed."""
    record = records.get_run(conn, run_id)
    if record is None:
        raise NotFound(f"no run {run_id}")
    try:
        principal = policy.get_principal(conn, record.requester)
        if principal is None or not principal.active:
            raise Denied(f"{record.requester} is no longer an active principal")
        definition = store.get(conn, record.template_key)
        if definition is None:
            raise NotFound(f"report definition {record.template_key} is gone")
        version = _runnable_version(conn, definition)
        if version.version != record.template_version:
            raise Conflict(f"version {record.template_version} of {definition.definition_id} is no longer the "
                           f"active one (v{version.version} is)")
        admitted = record.request_object()
        template, request = plan(conn, principal, definition, version, formats=admitted.formats,
                                 window=(admitted.window_start, admitted.window_end), trigger=admitted.trigger,
                                 include_withdrawn=admitted.include_withdrawn, correlation_id=record.trace_id)
    except (Conflict, Denied, NotFound, RequestError) as exc:
        raise supervisor.fail(conn, run_id, "policy_violation", f"re-validation before the run: {exc}") from exc
    return template, request


def get_run(conn, caller: Authenticated, run_id: str, *, correlation_id: str | None = None) -> RunRecord:
    """A definition run of the caller's own. Another tenant's (or no run) is NotFound; another
    principal's in the same tenant is Denied (audited): its row count and its file come from its
    requester's clearance (masking), verticals, regions and consent, so they are the requester's
    alone. Operators follow every run with `nexus-reports runs show`."""
    record = records.get_run(conn, run_id)
    if (record is None or not definition_template.is_definition_key(record.template_key)
            or not caller.principal.member_of(record.tenant_id)):
        raise NotFound(f"no run {run_id}")
    who = checks.who(caller)
    if who != record.requester:
        reason = f"run {run_id} was made for {record.requester}; its status and files are its requester's only"
        audit.record_now(conn, actor=who, action="run.view.denied", target=f"run {run_id}", outcome="denied",
                         tenant_id=record.tenant_id, correlation_id=correlation_id, details={"reason": reason})
        raise Denied(reason)
    return record


@dataclass(frozen=True)
class RunStatus:
    record: RunRecord
    sheets: list[str] | None  # the data sheets of its XLSX file, once published


def run_status(conn, caller: Authenticated, run_id: str, *, correlation_id: str | None = None) -> RunStatus:
    """A definition run of the caller's own (get_run) with what its files hold."""
    record = get_run(conn, caller, run_id, correlation_id=correlation_id)
    with conn:
        sheets = artifact_index.sheets_of(conn, run_id)
    return RunStatus(record, sheets)


def download(conn, caller: Authenticated, run_id: str, fmt: str, *, base_url: str,
             correlation_id: str | None = None) -> Download:
    """A short-lived link for the caller to one file of a completed run (the link service decides)."""
    record = get_run(conn, caller, run_id, correlation_id=correlation_id)
    if record.state != "completed":
        raise Conflict(f"run {run_id} is {record.state}; a file can be downloaded once it is completed")
    if fmt not in record.formats:
        raise NotFound(f"run {run_id} rendered {', '.join(record.formats)}, not {fmt}")
    who = checks.who(caller)
    created = link_service.create(conn, link_service.NewLink(run_id=run_id, fmt=fmt, principal_id=who, actor=who,
                                                             expires_in=DOWNLOAD_LIFETIME))
    return Download(url=created.url(public_base(base_url)), expires_at=created.expires_at, fmt=fmt)


def preview_definition(conn, caller: Authenticated, definition_id: str, parameters: RunParameters, *,
                       row_limit: int = PREVIEW_DEFAULT, include_withdrawn: ConsentOverride | None = None,
                       correlation_id: str | None = None) -> Preview:
    """The first rows as a run would produce them now, under the same rules, as report_reader."""
    if not 1 <= row_limit <= PREVIEW_MAX:
        raise Invalid(f"row_limit must be between 1 and {PREVIEW_MAX}")
    definition = checks.visible(conn, caller.principal, definition_id)
    tenant_id, target = definition.tenant_id, f"report definition {definition_id}"
    checks.authorize(conn, caller, "view", tenant_id, target, correlation_id)
    version = store.get_version(conn, definition_id, definition.current_version)
    try:
        result, withdrawn = read_rows(conn, caller, definition, version, parameters, row_limit=row_limit,
                                      include_withdrawn=include_withdrawn, correlation_id=correlation_id)
    except Conflict as exc:
        audit.record_now(conn, actor=checks.who(caller), action="definition.preview", target=definition_id,
                         outcome="failed", tenant_id=tenant_id, correlation_id=correlation_id,
                         details={"errors": [str(exc)]})
        raise
    audit.record_now(conn, actor=checks.who(caller), action="definition.preview", target=definition_id,
                     outcome="succeeded", tenant_id=tenant_id, correlation_id=correlation_id,
                     details={"version": version.version, "rows": len(result.rows),
                              **({"include_withdrawn": withdrawn} if withdrawn else {})})
    return result


def read_rows(conn, caller: Authenticated, definition: Definition, version: DefinitionVersion,
              parameters: RunParameters, *, row_limit: int, include_withdrawn: ConsentOverride | None = None,
              extra_filters: tuple[Filter, ...] = (), correlation_id: str | None = None) -> tuple[Preview, str | None]:
    """Up to row_limit rows of this version as a run would read them now (validated against the
    registry, compiled for the requester's clearance and masking, read as report_reader under the
    tenant, verticals, regions and consent of `scope_for`): the one read path of previews and
    chart renders. `extra_filters` narrow it further (a chart's own filters, checked by the
    builder like the definition's). Returns the rows and the logged consent override, if any."""
    given = parameters.half_open()
    window = builder.Window(*given) if given else None
    with conn:
        result = checks.check(conn, caller.principal, definition, version)
    if not result.valid:
        raise Conflict("the definition is not valid now: " + "; ".join(result.errors))
    scope = scope_for(caller.principal, version)
    tenant_id, target = definition.tenant_id, f"report definition {definition.definition_id}"
    withdrawn = _consent(conn, caller, include_withdrawn, tenant_id, target, correlation_id)
    spec = version.spec.model_copy(update={"filters": (*version.spec.filters, *extra_filters)}) if extra_filters \
        else version.spec
    with conn:
        _, compiled = checks.compile_spec(conn, clearance.viewer_for(caller.principal), spec, tenant_id,
                                          window=window, row_limit=row_limit + 1)
    reader_scope = dataclasses.replace(scope, include_withdrawn=withdrawn is not None)
    with warehouse.reader_connection() as reader, warehouse.reader_transaction(reader, tenant_id,
                                                                               scope=reader_scope) as cur:
        cur.execute(compiled.sql, compiled.params)
        rows = cur.fetchmany(row_limit + 1)
    return Preview(compiled.columns, rows[:row_limit], len(rows) > row_limit), withdrawn
