"""One report run as plain steps: start -> snapshot -> Gate B -> render and publish.

Dagster's assets call these steps one by one; `run_report` calls them in a row for the CLI
and for tests. Every step that fails ends the run record as failed with a classified reason
and leaves nothing published.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2

from orchestration.access import audit, policy
from orchestration.artifacts import index as artifact_index
from orchestration.artifacts import retention, storage
from orchestration.artifacts.storage import StorageError
from orchestration.catalog.templates import Template
from orchestration.db.warehouse import dict_rows, json_param, reader_connection, reader_transaction, sqlalchemy_url
from orchestration.dev import faults
from orchestration.exports import (
    KeyFigure,
    ReportContext,
    SectionSnapshot,
    redaction,
    write_csv,
    write_json,
    write_pdf,
    write_xlsx,
)
from orchestration.exports import checks as output_checks
from orchestration.governance import lifecycle
from orchestration.metrics import dbt_manifest
from orchestration.runs import freshness, records, snapshot
from orchestration.runs.gate_b import GateResult, run_gate_b
from orchestration.runs.records import ReportRequest
from orchestration.settings import Settings, get_settings


class RunFailed(RuntimeError):
    """A run ended as failed; the record holds the class and diagnosis."""

    def __init__(self, run_id: str, failure_class: str, diagnosis: str, *, retry: bool | None = None):
        super().__init__(f"run {run_id} failed ({failure_class}): {diagnosis}")
        self.run_id = run_id
        self.failure_class = failure_class
        self.diagnosis = diagnosis
        # None: as the class says (records.TRANSIENT); False: retrying now cannot help (stale source).
        self.retryable = failure_class in records.TRANSIENT if retry is None else retry


@dataclass(frozen=True)
class Published:
    run_id: str
    location: Path | str  # the local folder (Path), or s3://bucket/<prefix>/<run key> (str)
    manifest: dict[str, Any]
    key: str = ""  # the run key in its store: <tenant>/<template>/<period>/<run_id>
    store: str = "local"  # 'local' | 's3'


EXTENSIONS = {"csv": "csv", "json": "json", "xlsx": "xlsx", "pdf": "pdf"}


class AlreadyActive(RuntimeError):
    """The same request (input hash) is already queued or running: that run is the answer."""

    def __init__(self, run_id: str):
        super().__init__(f"the same request is already active as run {run_id}")
        self.run_id = run_id


class RunInterrupted(BaseException):
    """Raised into a running step from outside its flow (signal, checkpoint). Not an Exception,
    so that no `except Exception` in a library swallows it."""

    failure_class = "cancelled"


class RunCancelled(RunInterrupted):
    failure_class = "cancelled"


class RunTimedOut(RunInterrupted):
    failure_class = "timeout"


# The class a failure gets when nothing more specific is known: the stage it happened in.
STAGE_CLASS = {
    "queued": "policy_violation", "starting": "policy_violation", "freshness": "source_unavailable",
    "snapshot": "query_failure", "gate_b": "validation_failed", "render": "format_error", "publish": "storage_failure",
}
_stage: dict[str, str] = {}  # run_id -> stage, for runs executing in this process


def classify(exc: BaseException, default: str) -> tuple[str, str]:
    """(failure class, one-line diagnosis) of an exception that ended a run."""
    first_line = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__
    if isinstance(exc, RunInterrupted):
        return exc.failure_class, str(exc)
    if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "DagsterExecutionInterruptedError":
        return "cancelled", "cancelled: the run was terminated (Dagster terminate or interrupt)"
    if isinstance(exc, psycopg2.errors.QueryCanceled):
        if "statement timeout" in str(exc):
            return "timeout", f"a query ran past the run's timeout: {text}"
        return "cancelled", f"a query was cancelled: {text}"
    if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        return "source_unavailable", f"lost the warehouse connection: {text}"
    if isinstance(exc, (StorageError, faults.InjectedStorageFailure)):
        return "storage_failure", text
    return default, text


def abandon(conn, run_id: str, settings: Settings | None = None) -> None:
    """Leave nothing of an unfinished run visible: staging files removed, snapshot marked abandoned."""
    record = records.get_run(conn, run_id)
    if record is None:
        return
    settings = settings or get_settings()
    key = storage.run_key(record["tenant_id"], record["template_key"],
                          record["period_key"] or f"{record['window_start']}_{record['window_end']}", run_id)
    shutil.rmtree(storage.staging_location(settings.artifacts_dir / key), ignore_errors=True)
    if record["stage"] in ("render", "publish", "done") and record["state"] != "completed":
        try:  # a publish to S3 cut short: staging keys and open multipart uploads go too
            storage.get_store(settings).discard(key)
        except StorageError:
            pass  # the store is unreachable: what is left has no manifest, so no reader sees it
    tables = snapshot.tables_of(conn, run_id)
    if tables:
        records.update_run(conn, run_id, snapshot_state="abandoned",
                        snapshot_tables={**record["snapshot_tables"], **tables})


def end_unsuccessfully(conn, run_id: str, failure_class: str, diagnosis: str, *, settings=None,
                       retry: bool | None = None) -> RunFailed:
    """Clean up, record the class, diagnosis and guidance, audit; returns the RunFailed to raise."""
    from orchestration.db.warehouse import connection

    state = "cancelled" if failure_class == "cancelled" else "failed"
    try:
        conn.rollback()  # the step may have left its transaction aborted
        _finish(conn, run_id, state, failure_class, diagnosis, settings)
    except psycopg2.Error:
        with connection() as fresh:  # the step's own connection may be the thing that broke
            _finish(fresh, run_id, state, failure_class, diagnosis, settings)
    _stage.pop(run_id, None)
    return RunFailed(run_id, failure_class, diagnosis, retry=retry)


def _finish(conn, run_id, state, failure_class, diagnosis, settings) -> None:
    abandon(conn, run_id, settings)
    if records.finish_run(conn, run_id, state, failure_class=failure_class, diagnosis=diagnosis):
        audit.record_now(conn, actor="system", action=f"run.{state}", target=run_id, outcome="failed",
                         correlation_id=run_id, details={"failure_class": failure_class, "diagnosis": diagnosis})


def fail(conn, run_id: str, failure_class: str, diagnosis: str, *, retry: bool | None = None) -> RunFailed:
    return end_unsuccessfully(conn, run_id, failure_class, diagnosis, retry=retry)


@contextlib.contextmanager
def guarded(conn, run_id: str, failure_class: str | None = None):
    """End the run (cleaned up, classified) when a step raises something it did not handle itself.
    Exceptions become RunFailed; interrupts from outside (Dagster terminate) propagate as they are."""
    try:
        yield
    except RunFailed:
        raise
    except BaseException as exc:
        default = failure_class or STAGE_CLASS.get(_stage.get(run_id, ""), "query_failure")
        cls, diagnosis = classify(exc, default)
        failed = end_unsuccessfully(conn, run_id, cls, diagnosis)
        if isinstance(exc, (Exception, RunInterrupted)):
            raise failed from exc
        raise


def checkpoint(conn, run_id: str, stage: str, **fault_context) -> None:
    """Progress, and the place where a cancel request or the timeout takes effect."""
    _stage[run_id] = stage
    info = records.set_stage(conn, run_id, stage)
    if info["cancel_requested"]:
        raise RunCancelled(f"cancelled on request (at {stage})")
    limit = info["timeout_seconds"]
    if limit and info["started_at"] and (info["now"] - info["started_at"]).total_seconds() > limit:
        raise RunTimedOut(f"exceeded the template's timeout of {limit}s (at {stage})")
    faults.hit(stage, **fault_context)


def remaining_seconds(conn, run_id: str, record: dict[str, Any] | None = None) -> float | None:
    record = record or records.get_run(conn, run_id)
    if not record or not record["timeout_seconds"] or not record["started_at"]:
        return None
    elapsed = (dt.datetime.now(dt.UTC) - record["started_at"]).total_seconds()
    return max(record["timeout_seconds"] - elapsed, 0.001)


@contextlib.contextmanager
def interruptible(conn, run_id: str):
    """In the main thread: SIGTERM cancels the run and an alarm ends it at its timeout, raised
    wherever the step is (rendering, sleeping, between queries); queries get statement_timeout."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    record = records.get_run(conn, run_id)
    remaining = remaining_seconds(conn, run_id, record)
    limit = record["timeout_seconds"]

    def on_term(signum, frame):
        raise RunCancelled("cancelled on request (the worker received SIGTERM)")

    def on_alarm(signum, frame):
        raise RunTimedOut(f"exceeded the template's timeout of {limit}s")

    old_term = signal.signal(signal.SIGTERM, on_term)
    old_alarm = signal.signal(signal.SIGALRM, on_alarm)
    if remaining:
        signal.setitimer(signal.ITIMER_REAL, remaining)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGALRM, old_alarm)


def reap(conn, settings: Settings | None = None) -> list[str]:
    """Runs whose worker died (killed, crashed machine) end as failed with the class of the stage
    they died in, and are cleaned up. Checked on this host by pid, elsewhere by heartbeat age."""
    reaped = []
    with conn, conn.cursor() as cur:
        cur.execute("select * from control.report_runs where state = 'running'")
        running = dict_rows(cur)
    now = dt.datetime.now(dt.UTC)
    for record in running:
        alive = records.worker_alive(record)
        stale = bool(record["heartbeat_at"] and record["timeout_seconds"]
                     and (now - record["heartbeat_at"]).total_seconds() > 2 * record["timeout_seconds"])
        if alive is False or (alive is None and stale):
            cls = STAGE_CLASS.get(record["stage"], "query_failure")
            how = f"worker process {record['worker_pid']} died" if alive is False else "its worker stopped reporting"
            end_unsuccessfully(conn, record["run_id"], cls, f"{how} during {record['stage']}; nothing was published",
                               settings=settings)
            reaped.append(record["run_id"])
    return reaped


def admit(conn, template: Template, request: ReportRequest, *, dagster_run_id: str | None = None,
          expected_tenant: str | None = None, **create: Any) -> str:
    """Validate, record as queued, check approval and authorization: the run contract. A refusal
    is audited and, once recorded, ends the run as failed (policy_violation) before any query.
    `expected_tenant`: the tenant a trusted source (a schedule) says the run is for; a request
    for another tenant is refused and recorded as a security event."""
    try:
        request.validate(template)
        if expected_tenant is not None and request.tenant_id != expected_tenant:
            security_event(conn, "tenant_mismatch", actor=request.requester, tenant_id=expected_tenant,
                           details={"requested_tenant": request.tenant_id, "expected_tenant": expected_tenant,
                                    "template": template.label, **({"schedule_id": create["schedule_id"]}
                                                                   if create.get("schedule_id") else {})})
            raise records.RequestError(f"tenant {request.tenant_id!r} differs from the schedule's tenant "
                                    f"{expected_tenant!r}: refused and recorded as a security event")
    except records.RequestError as exc:
        audit.record_now(conn, actor=request.requester or "(none)", action="run.refused", target=template.label,
                         outcome="denied", tenant_id=request.tenant_id if isinstance(request.tenant_id, str) else None,
                         details={"reason": str(exc)})
        raise
    run_id, created = records.create_run(conn, request, dagster_run_id=dagster_run_id,
                                      timeout_seconds=template.timeout_seconds, **create)
    if not created:
        audit.record_now(conn, actor=request.requester, action="run.deduplicated", target=run_id,
                         outcome="allowed", tenant_id=request.tenant_id, correlation_id=run_id,
                         details={"input_hash": request.input_hash})
        raise AlreadyActive(run_id)
    _authorize(conn, template, request, run_id, audit_allowed=True)
    return run_id


def security_event(conn, kind: str, *, actor: str, tenant_id: str | None, details: dict[str, Any]) -> None:
    """A possible attack or misconfiguration: kept apart from routine denials, and audited."""
    with conn, conn.cursor() as cur:
        cur.execute("insert into control.security_events (kind, actor, tenant_id, details) values (%s, %s, %s, %s)",
                    (kind, actor, tenant_id, json_param(details)))
    audit.record_now(conn, actor=actor, action=f"security.{kind}", target=tenant_id or "-", outcome="denied",
                     tenant_id=tenant_id, details=details)


def _authorize(conn, template: Template, request: ReportRequest, run_id: str, *, audit_allowed: bool) -> None:
    target = f"{template.label} for {request.tenant_id} {request.window_start}..{request.window_end}"
    try:
        runnable = lifecycle.check_runnable(conn, template, trigger=request.trigger)
    except lifecycle.NotRunnable as exc:
        audit.record_now(conn, actor=request.requester, action="run.denied", target=target, outcome="denied",
                         tenant_id=request.tenant_id, correlation_id=run_id, details={"reason": str(exc)})
        raise fail(conn, run_id, "policy_violation", str(exc)) from exc
    try:
        policy.authorize(conn, request.requester, "run", target=target, tenant_id=request.tenant_id,
                         allowed_roles=template.roles.run, correlation_id=run_id)
    except policy.AccessDenied as exc:
        raise fail(conn, run_id, "policy_violation", str(exc)) from exc
    if audit_allowed:
        audit.record_now(conn, actor=request.requester, action="run.requested", target=target, outcome="allowed",
                         tenant_id=request.tenant_id, correlation_id=run_id,
                         details={"trigger": request.trigger, "input_hash": request.input_hash,
                                  **({"warning": runnable.warning} if runnable.warning else {})})


def start(conn, template: Template, request: ReportRequest, *, dagster_run_id: str | None = None,
          run_id: str | None = None, expected_tenant: str | None = None, **create: Any) -> str:
    """Admit the request (or, for a run admitted earlier by the CLI, check it again: approval or
    membership may have changed while it waited), then mark it running in this process."""
    if run_id is None:
        run_id = admit(conn, template, request, dagster_run_id=dagster_run_id, expected_tenant=expected_tenant,
                       **create)
    else:
        record = records.get_run(conn, run_id)
        if record is None or record["input_hash"] != request.input_hash:
            raise records.RequestError(f"run {run_id} was not admitted for this request")
        if record["state"] != "queued":
            raise records.RequestError(f"run {run_id} is {record['state']}, not queued")
        _authorize(conn, template, request, run_id, audit_allowed=False)
    records.mark_running(conn, run_id, dagster_run_id=dagster_run_id)
    _stage[run_id] = "starting"
    return run_id


def check_freshness(conn, run_id: str, template: Template, request: ReportRequest) -> None:
    """Measure the declared sources; stale ones fail the run or mark it degraded, per the template."""
    checkpoint(conn, run_id, "freshness")
    states = freshness.measure(conn, template, request.tenant_id, request.window_end)
    fields: dict[str, Any] = {"source_watermarks": freshness.watermarks(states)}
    stale = [s for s in states if not s.fresh]
    if stale:
        reason = "stale source " + "; ".join(s.describe() for s in stale)
        if template.degraded_data == "fail":
            records.update_run(conn, run_id, **fields)
            raise fail(conn, run_id, "source_unavailable", reason, retry=False)
        fields.update(degraded=True, degraded_reason=reason)
        audit.record_now(conn, actor="system", action="run.degraded", target=run_id, outcome="succeeded",
                         tenant_id=request.tenant_id, correlation_id=run_id, details={"reason": reason})
    records.update_run(conn, run_id, **fields)


def take_snapshot(conn, run_id: str, template: Template, request: ReportRequest) -> dict[str, SectionSnapshot]:
    checkpoint(conn, run_id, "snapshot")
    try:
        with reader_connection() as reader:
            sections = snapshot.take(conn, reader, run_id, template, request,
                                     timeout_seconds=remaining_seconds(conn, run_id))
    except snapshot.SnapshotError as exc:
        raise fail(conn, run_id, "query_failure", str(exc)) from exc
    except dbt_manifest.DbtError as exc:
        raise fail(conn, run_id, "query_failure", str(exc)) from exc
    records.update_run(
        conn,
        run_id,
        snapshot_tables={name: s.table for name, s in sections.items()},
        row_counts={name: s.row_count for name, s in sections.items()},
        snapshot_state="frozen",
    )
    return sections


def sections_of(template: Template, record: dict[str, Any]) -> dict[str, SectionSnapshot]:
    """Rebuild a run's section snapshots from its record (for steps in another process)."""
    sections = {}
    for name, table in record["snapshot_tables"].items():
        section = template.section(name)
        sections[name] = SectionSnapshot(
            name=name,
            title=section.title,
            table=table,
            columns=tuple(c.as_column() for c in section.columns),
            order_by=(snapshot.ORDINAL,),
            row_count=record["row_counts"][name],
        )
    return sections


def request_of(record: dict[str, Any]) -> ReportRequest:
    data = dict(record["request"])
    data["window_start"] = dt.date.fromisoformat(data["window_start"])
    data["window_end"] = dt.date.fromisoformat(data["window_end"])
    data["formats"] = tuple(data["formats"])
    return ReportRequest(**data)


def gate_b(conn, run_id: str, template: Template, request: ReportRequest, sections, *, settings=None) -> GateResult:
    checkpoint(conn, run_id, "gate_b")
    result = run_gate_b(template, request, sections, connection_string=sqlalchemy_url(settings=settings))
    records.update_run(conn, run_id, gate_passed=result.passed, gate_summary=result.summary())
    if not result.passed:
        raise fail(conn, run_id, "validation_failed", result.diagnosis())
    return result


def render_and_publish(
    conn, run_id: str, template: Template, request: ReportRequest, sections, *, settings: Settings | None = None
) -> Published:
    """Render every requested format from the snapshot into staging, then publish atomically."""
    settings = settings or get_settings()
    record = records.get_run(conn, run_id)
    if not record or record["gate_passed"] is not True:
        # Publishing without a recorded Gate B pass is impossible by construction, not by convention.
        raise fail(conn, run_id, "validation_failed", "refusing to publish: no passed Gate B recorded for this run")
    period = request.period_key or f"{request.window_start}_{request.window_end}"
    key = storage.run_key(request.tenant_id, template.key, period, run_id)
    # Every store renders into a local staging folder first; the store publishes it atomically.
    staging = storage.staging_location(settings.artifacts_dir / key)
    try:
        store = storage.get_store(settings)
        staging.mkdir(parents=True, exist_ok=False)
    except (OSError, StorageError) as exc:
        raise fail(conn, run_id, "storage_failure", f"cannot stage {staging}: {exc}") from exc
    try:
        checkpoint(conn, run_id, "render")
        try:
            context = report_context(conn, run_id, template, request, sections, record)
            files = _render(conn, template, request, sections, context, staging)
            redactions: list[dict[str, Any]] = []
            if template.redaction.external_variant:
                planned = redaction.plan(template)
                external = redaction.redacted_sections(conn, sections, planned, request.tenant_id, snapshot.ORDINAL)
                files += _render(conn, template, request, external, context, staging, variant="external")
                redactions = [r.as_manifest() for by_column in planned.values() for r in by_column.values()]
        except (psycopg2.Error, OSError, ValueError, RuntimeError) as exc:
            raise fail(conn, run_id, "format_error", f"rendering failed: {exc}".strip()) from exc
        problems = output_checks.check_files(staging, files, context)
        for entry in files:
            entry.pop("_sections")
        if problems:
            raise fail(conn, run_id, "format_error", "output check failed: " + "; ".join(problems))
        manifest = build_manifest(template, request, record, sections, files, context)
        manifest["redactions"] = redactions
        checkpoint(conn, run_id, "publish")
        try:
            result = store.publish(staging, key, manifest)
        except StorageError as exc:
            raise fail(conn, run_id, "storage_failure", str(exc)) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # after a local publish it is gone already (renamed into place)
    manifest_sha = result.manifest_sha256

    def complete(cur) -> None:  # in the transaction that ends the run: location and index rows
        cur.execute("update control.report_runs set artifact_location = %s, manifest_sha256 = %s where run_id = %s",
                    (result.location, manifest_sha, run_id))
        artifact_index.record_published(cur, record=record, template=template, store_kind=store.kind,
                                        location=result.location, keys=result.keys, files=files,
                                        retention_days=retention.retention_days(template))

    if not records.finish_run(conn, run_id, "completed", then=complete):
        # The run ended meanwhile (cancelled, reaped): what was just published is taken back.
        store.delete(key)
        _stage.pop(run_id, None)
        ended = records.get_run(conn, run_id)
        raise RunFailed(run_id, ended["failure_class"] or "cancelled", ended["diagnosis"] or "the run ended while publishing")
    _stage.pop(run_id, None)
    final = Path(result.location) if store.kind == "local" else result.location
    if record["supersedes_run_id"]:
        records.update_run(conn, record["supersedes_run_id"], superseded_by=run_id)
        audit.record_now(conn, actor=request.requester, action="run.superseded", target=record["supersedes_run_id"],
                         outcome="succeeded", tenant_id=request.tenant_id, correlation_id=run_id,
                         details={"superseded_by": run_id})
    audit.record_now(conn, actor=request.requester, action="report.exported", target=str(final), outcome="succeeded",
                     tenant_id=request.tenant_id, correlation_id=run_id,
                     details={"files": [{k: f[k] for k in ("name", "sha256", "bytes")} for f in files],
                              "manifest_sha256": manifest_sha, "store": store.kind})
    return Published(run_id=run_id, location=final, manifest=manifest, key=key, store=store.kind)


def _render(conn, template, request, sections, context, staging: Path, *, variant: str = "internal") -> list[dict[str, Any]]:
    """Every requested format of one variant; each file entry says which sections (and columns)
    it holds, for the output checks."""
    ordered = [sections[s.name] for s in template.sections if s.name in sections]
    files = []
    suffix = "" if variant == "internal" else f".{variant}"
    for fmt in template.formats:
        if fmt not in request.formats:
            continue
        path = staging / f"{template.key}{suffix}.{EXTENSIONS[fmt]}"
        if fmt == "csv":
            note = f"DEGRADED: {context.degraded_reason}" if context.degraded else None
            rows = write_csv(conn, sections[template.primary_section], path, status_note=note)
        elif fmt == "json":
            rows = write_json(conn, context, ordered, path)
        elif fmt == "xlsx":
            rows = write_xlsx(conn, context, ordered, path)
        else:
            rows = write_pdf(conn, context, ordered, path)
        conn.commit()  # exporters read with server-side cursors inside a transaction
        entry = storage.file_entry(path, fmt, rows)
        entry["variant"] = variant
        shown = [sections[template.primary_section]] if fmt == "csv" else ordered
        entry["_sections"] = shown  # for the output checks; not written to the manifest
        files.append(entry)
    return files


def _display(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, Decimal):
        return f"{value:,.0f}" if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def report_context(conn, run_id, template: Template, request: ReportRequest, sections, record) -> ReportContext:
    figures: tuple[KeyFigure, ...] = ()
    if template.key_figures and template.key_figures.section in sections:
        snap = sections[template.key_figures.section]
        with conn, conn.cursor() as cur:
            cur.execute(f"select * from {snap.table} order by {snapshot.ORDINAL} limit 1")
            row = cur.fetchone()
            names = [d.name for d in cur.description]
        values = dict(zip(names, row)) if row else {}
        figures = tuple(
            KeyFigure(label=f.label, value=_display(values.get(f.column)), unit=f.unit)
            for f in template.key_figures.figures
        )
    tenant_name = request.tenant_id
    with reader_connection() as reader, reader_transaction(reader, request.tenant_id) as cur:
        cur.execute(f"select name from {dbt_manifest.model('tenants').relation} where tenant_id = %s", (request.tenant_id,))
        row = cur.fetchone()
        if row:
            tenant_name = row[0]
    period_label = records.window_label(request.window_start, request.window_end)
    return ReportContext(
        template_key=template.key,
        template_version=template.version,
        title=template.title,
        tenant_id=request.tenant_id,
        tenant_name=tenant_name,
        period_label=period_label,
        window_start=request.window_start,
        window_end=request.window_end,
        run_id=run_id,
        input_hash=record["input_hash"],
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        key_figures=figures,
        charts=tuple(c.as_spec() for c in template.charts),
        primary_section=template.primary_section,
        degraded=bool(record["degraded"]),
        degraded_reason=record["degraded_reason"] or "",
    )


def build_manifest(template, request, record, sections, files, context) -> dict[str, Any]:
    manifest_data = dbt_manifest.load_manifest()
    metrics = [
        dbt_manifest.metric_definition(m.id, m.model, m.version, manifest_data) for m in template.metrics
    ]
    return {
        "manifest_version": 1,
        "run_id": record["run_id"],
        "dagster_run_id": record["dagster_run_id"],
        "input_hash": record["input_hash"],
        "request": {**request.canonical(), "trigger": request.trigger, "period_key": request.period_key},
        "template": {
            "key": template.key,
            "version": template.version,
            "content_hash": template.content_hash,
            "owner": template.owner,
            "sensitivity": template.sensitivity,
        },
        "tenant_id": request.tenant_id,
        "window": {"start": request.window_start.isoformat(), "end_exclusive": request.window_end.isoformat()},
        "metrics": metrics,
        "dbt": {
            "manifest_sha256": dbt_manifest.manifest_hash(),
            "models": [
                {"name": name, "version": version, "relation": dbt_manifest.model(name, version, manifest_data).relation}
                for name, version in template.models_read()
            ],
        },
        "snapshot": {name: {"table": s.table, "rows": s.row_count} for name, s in sections.items()},
        "row_counts": {name: s.row_count for name, s in sections.items()},
        "gate_b": record["gate_summary"],
        "degraded": {"degraded": bool(record["degraded"]), "reason": record["degraded_reason"]},
        "source_watermarks": record["source_watermarks"],
        "supersedes_run_id": record["supersedes_run_id"],
        "redactions": [],
        "files": files,
        "generated_at": context.generated_at.isoformat(),
    }


MAX_ATTEMPTS = 3
BACKOFF_SECONDS = 1.0


def run_report(template: Template, request: ReportRequest, *, conn=None, settings=None, dagster_run_id=None,
               run_id: str | None = None, retries: bool = True, **create: Any) -> Published:
    """All steps in a row, in this process (CLI, tests, the report_run job). A transient failure
    (records.TRANSIENT) is retried with exponential backoff, each attempt its own run (retry_of)."""
    attempt = create.pop("attempt", 1)
    while True:
        try:
            return _run_once(template, request, conn=conn, settings=settings, dagster_run_id=dagster_run_id,
                             run_id=run_id, attempt=attempt, **create)
        except RunFailed as failed:
            if not retries or not failed.retryable or attempt >= MAX_ATTEMPTS:
                raise
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
            attempt, run_id, create["retry_of"] = attempt + 1, None, failed.run_id


def _run_once(template, request, *, conn, settings, dagster_run_id, run_id, **create) -> Published:
    from orchestration.db.warehouse import connect

    own = conn is None
    conn = conn or connect(settings)
    try:
        run_id = start(conn, template, request, dagster_run_id=dagster_run_id, run_id=run_id, **create)
        with guarded(conn, run_id), interruptible(conn, run_id):
            check_freshness(conn, run_id, template, request)
            sections = take_snapshot(conn, run_id, template, request)
            gate_b(conn, run_id, template, request, sections, settings=settings)
            return render_and_publish(conn, run_id, template, request, sections, settings=settings)
    finally:
        if own:
            conn.close()
