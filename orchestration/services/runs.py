"""Run use cases: submit, execute, cancel, show, list. The one submission path.

Every adapter turns its input into a `RunSubmission`: the CLI from flags, Dagster's `report_run`
job from its config, a per-template asset from its partition and tags, a runtime schedule tick
through that asset. `prepare` resolves the version and builds the request; any refusal on the
way (unknown template, garbage period, bad filter) is audited here, and the contract itself is
checked and audited by `runs.admission`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from orchestration.access import audit, policy, tenants
from orchestration.artifacts import index as artifact_index
from orchestration.artifacts import which_store
from orchestration.catalog import definition_template
from orchestration.catalog.templates import Template
from orchestration.errors import Denied, Invalid, NotFound
from orchestration.governance import versions
from orchestration.runs import admission, records, worker
from orchestration.runs.periods import RequestError, parse_day
from orchestration.runs.publish import Published
from orchestration.runs.request import ReportRequest
from orchestration.runs.run_record import RunOrigin, RunRecord
from orchestration.services import definition_runs

_TENANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


@dataclass(frozen=True)
class RunSubmission:
    """A run as asked for, before anything is resolved: what each adapter fills in."""

    template_key: str
    tenant_id: str
    requester: str
    version: int | None = None
    period: str | None = None
    date_from: str | None = None  # inclusive
    date_to: str | None = None  # inclusive
    filters: dict[str, Any] = field(default_factory=dict)  # values as given (text from CLI/config)
    formats: tuple[str, ...] = ()  # empty: all the template offers
    trigger: str = "manual"
    template: Template | None = None  # pinned by an adapter that holds the version (per-template asset)

    def described(self) -> dict[str, Any]:
        return {k: v for k, v in {"template": self.template_key, "version": self.version, "period": self.period,
                                  "from": self.date_from, "to": self.date_to, "filters": self.filters or None,
                                  "formats": list(self.formats) or None, "trigger": self.trigger}.items() if v}


def parse_filters(template: Template, raw: dict[str, Any]) -> dict[str, Any]:
    """Filter values as given (text) -> typed values; unknown names are left to the contract."""
    declared = {f.name: f for f in template.filters}
    typed = {}
    for name, value in raw.items():
        if value is None:
            raise RequestError(f"filter {name!r}: expected name=value")
        spec = declared.get(name)
        if spec is not None and spec.type == "integer" and not isinstance(value, int):
            try:
                value = int(value)
            except ValueError:
                raise RequestError(f"filter {name}={value!r}: expected an integer") from None
        typed[name] = value
    return typed


def _request(template: Template, s: RunSubmission) -> ReportRequest:
    if bool(s.period) == bool(s.date_from or s.date_to):
        raise RequestError("give either --period or --from and --to: a period, or a window's first and last day")
    kwargs = dict(requester=s.requester, trigger=s.trigger, filters=parse_filters(template, s.filters),
                  formats=tuple(s.formats) or template.formats)
    if s.period:
        return ReportRequest.for_period(template, s.tenant_id, s.period, **kwargs)
    if not (s.date_from and s.date_to):
        raise RequestError("an ad-hoc window needs both --from and --to (its first and last day)")
    start, last = parse_day(s.date_from, "from date"), parse_day(s.date_to, "to date")
    if last < start:
        raise RequestError(f"to date {last} is before from date {start}")
    if last >= dt.date.max:
        raise RequestError(f"to date {last} is out of range")
    return ReportRequest(template_key=template.key, template_version=template.version, tenant_id=s.tenant_id,
                         window_start=start, window_end=last + dt.timedelta(days=1), **kwargs)


def _check_tenant_exists(conn, tenant_id: str) -> None:
    """An unknown tenant is 'unknown tenant' with the nearest names, not a membership refusal."""
    if not isinstance(tenant_id, str) or not _TENANT_ID.fullmatch(tenant_id):
        return  # malformed ids get the contract's own, more specific message
    known = tenants.list_tenant_ids(conn)
    if tenant_id not in known and tenant_id != tenants.PLATFORM:
        near = difflib.get_close_matches(tenant_id, known, n=3, cutoff=0.6)
        raise NotFound(f"unknown tenant {tenant_id}" + (f"; did you mean {', '.join(near)}?" if near else ""))


def prepare(conn, submission: RunSubmission) -> tuple[Template, ReportRequest]:
    """The template version and the typed request; every refusal is audited (one row)."""
    try:
        _check_tenant_exists(conn, submission.tenant_id)
        template = submission.template or versions.resolve(
            conn, submission.template_key, submission.version, tenant_id=submission.tenant_id).template
        return template, _request(template, submission)
    except (Invalid, NotFound) as exc:
        admission.audit_refusal(conn, requester=submission.requester, target=submission.template_key,
                                reason=str(exc), tenant_id=submission.tenant_id, asked=submission.described())
        raise


MISSING_REQUESTER = ("no requester: set `requester` in the run config (or the nexus/requester tag) to the principal "
                     "the run is for, e.g. analyst@acme.example")


def check_requester(conn, submission: RunSubmission, template: Template | None = None) -> None:
    """The requester is named, a known and active principal, and may run the template for the tenant.
    A refusal is audited and says what to change (`nexus-reports principals list` shows who exists)."""
    requester = (submission.requester or "").strip()
    principal = policy.get_principal(conn, requester) if requester else None
    if not requester:
        reason = MISSING_REQUESTER
    elif principal is None:
        near = difflib.get_close_matches(requester, [p.principal_id for p in policy.list_principals(conn)], n=3)
        reason = (f"unknown requester {requester}: not in the principals table"
                  + (f"; did you mean {', '.join(near)}?" if near else "; see `nexus-reports principals list`"))
    else:
        why = policy.decide(principal, "run", tenant_id=submission.tenant_id,
                            allowed_roles=template.roles.run if template else None)
        reason = f"{requester} may not run {template.label if template else submission.template_key} " \
                 f"for {submission.tenant_id}: {why}" if why else None
    if reason:
        admission.audit_refusal(conn, requester=requester or None, target=submission.template_key, reason=reason,
                                tenant_id=submission.tenant_id, asked=submission.described())
        raise Denied(reason)


def check_before_launch(conn, submission: RunSubmission) -> None:
    """Everything a launcher can check before it starts a run (Dagster's run coordinator does, for a
    launch from the UI): the contract (template, tenant, window, formats, filters) and the requester.
    Raises the refusal, already audited; a report definition's run is checked where it executes."""
    if definition_template.is_definition_key(submission.template_key):
        return
    if not (submission.requester or "").strip():
        check_requester(conn, submission)  # refuses: said first, whatever else is wrong
    template, request = prepare(conn, submission)
    try:
        request.validate(template)
    except RequestError as exc:
        admission.audit_refusal(conn, requester=submission.requester, target=template.label, reason=str(exc),
                                tenant_id=submission.tenant_id, asked=submission.described())
        raise
    check_requester(conn, submission, template)


def submit(conn, submission: RunSubmission, origin: RunOrigin = RunOrigin()) -> str:
    """Admit a run to execute later (in a worker, or a Dagster step): returns its run id.
    Raises AlreadyActive (a Conflict naming the active run) for a duplicate request."""
    template, request = prepare(conn, submission)
    return admission.admit(conn, template, request, origin)


def submit_and_launch(conn, submission: RunSubmission) -> str:
    """The CLI's `run`: admitted here, then launched (runs/worker.launch: through Dagster's run
    queue to the warm pool when one is running, else a detached worker process)."""
    run_id = submit(conn, submission)
    worker.launch(run_id)
    return run_id


def execute(conn, submission: RunSubmission, origin: RunOrigin = RunOrigin()) -> Published:
    """Admit (unless origin.run_id names an admitted run) and run every step in this process.
    A report definition's run was admitted by the Reporting API; it is compiled again here."""
    if definition_template.is_definition_key(submission.template_key):
        if origin.run_id is None:
            raise Invalid(f"{submission.template_key} is a report definition: its runs are submitted through the "
                          "Reporting API (POST /reports/definitions/{id}/run)")
        template, request = definition_runs.prepare_execution(conn, origin.run_id)
    else:
        template, request = prepare(conn, submission)
    from orchestration.runs import engine  # Gate B, rendering: only where a run executes, not in every CLI

    return engine.run_report(template, request, origin, conn=conn)


def start(conn, submission: RunSubmission, origin: RunOrigin = RunOrigin()) -> tuple[Template, ReportRequest, str]:
    """Admit and mark running, for adapters that run the steps themselves (per-template assets)."""
    template, request = prepare(conn, submission)
    return template, request, admission.start(conn, template, request, origin)


def cancel(conn, run_id: str, *, actor: str) -> RunRecord:
    """Cancel a queued or running run: the requester, or someone who may run it for its tenant."""
    record = records.get_run(conn, run_id)
    if record is None:
        raise NotFound(f"no run {run_id}")
    if actor != record.requester:
        policy.authorize(conn, actor, "run", target=f"cancel {run_id}", tenant_id=record.tenant_id,
                         correlation_id=record.trace_id)
    if record.ended:
        raise Invalid(f"run {run_id} already ended: {record.state}")
    record = records.request_cancel(conn, run_id)
    audit.record_now(conn, actor=actor, action="run.cancel_requested", target=run_id, outcome="allowed",
                     tenant_id=record.tenant_id, correlation_id=record.trace_id)
    if record.state == "running":
        worker.stop(record)
    return record


@dataclass(frozen=True)
class PublishedFile:
    """One file of a published run, as its manifest lists it."""

    name: str
    fmt: str
    variant: str
    rows: int
    size: int  # bytes


def published_files(record: RunRecord) -> list[PublishedFile]:
    """The files of a completed run (read from its manifest, wherever it was published)."""
    if not record.artifact_location:
        return []
    store, key = which_store.for_location(record.artifact_location)
    return [PublishedFile(f["name"], f["format"], f.get("variant", "internal"), int(f.get("rows") or 0), int(f["bytes"]))
            for f in store.read_manifest(key)["files"]]


@dataclass(frozen=True)
class RunView:
    record: RunRecord
    chain: list[RunRecord]
    sheets: list[str] | None = None  # the data sheets of its XLSX file, when it has one


def show(conn, run_id: str) -> RunView:
    record = records.get_run(conn, run_id)
    if record is None:
        raise NotFound(f"no run {run_id}")
    with conn:
        sheets = artifact_index.sheets_of(conn, run_id)
    return RunView(record, records.chain(conn, run_id), sheets)


def list_runs(conn, *, tenant_id: str | None = None, state: str | None = None, limit: int = 20) -> list[RunRecord]:
    return records.list_runs(conn, tenant_id=tenant_id, state=state, limit=limit)

