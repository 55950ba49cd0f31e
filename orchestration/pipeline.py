"""One report run as plain steps: start -> snapshot -> Gate B -> render and publish.

Dagster's assets call these steps one by one; `run_report` calls them in a row for the CLI
and for tests. Every step that fails ends the run record as failed with a classified reason
and leaves nothing published.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2

from . import access, artifacts, audit, dbt_manifest, governance, runs, snapshot
from .artifacts import StorageError
from .catalog import Template
from .exports import KeyFigure, ReportContext, SectionSnapshot, write_csv, write_json, write_pdf, write_xlsx
from .quality import GateResult, run_gate_b
from .runs import ReportRequest
from .settings import Settings, get_settings
from .warehouse import reader_connection, reader_transaction, sqlalchemy_url


class RunFailed(RuntimeError):
    """A run ended as failed; the record holds the class and diagnosis."""

    def __init__(self, run_id: str, failure_class: str, diagnosis: str):
        super().__init__(f"run {run_id} failed ({failure_class}): {diagnosis}")
        self.run_id = run_id
        self.failure_class = failure_class
        self.diagnosis = diagnosis


@dataclass(frozen=True)
class Published:
    run_id: str
    location: Path
    manifest: dict[str, Any]


EXTENSIONS = {"csv": "csv", "json": "json", "xlsx": "xlsx", "pdf": "pdf"}


def fail(conn, run_id: str, failure_class: str, diagnosis: str) -> RunFailed:
    conn.rollback()  # the step may have left its transaction aborted
    runs.finish_run(conn, run_id, "failed", failure_class=failure_class, diagnosis=diagnosis)
    audit.record_now(conn, actor="system", action="run.failed", target=run_id, outcome="failed",
                     correlation_id=run_id, details={"failure_class": failure_class, "diagnosis": diagnosis})
    return RunFailed(run_id, failure_class, diagnosis)


@contextlib.contextmanager
def guarded(conn, run_id: str, failure_class: str):
    """End the run as failed when a step raises something it did not classify itself."""
    try:
        yield
    except RunFailed:
        raise
    except BaseException as exc:
        if isinstance(exc, psycopg2.OperationalError):
            failure_class = "source_unavailable"
        elif isinstance(exc, KeyboardInterrupt):
            failure_class = "cancelled"
        try:
            conn.rollback()
            runs.finish_run(conn, run_id, "cancelled" if failure_class == "cancelled" else "failed",
                            failure_class=failure_class, diagnosis=f"{type(exc).__name__}: {exc}".strip())
        except psycopg2.Error:
            from .warehouse import connection

            with connection() as fresh:  # the step's own connection may be the thing that broke
                runs.finish_run(fresh, run_id, "failed", failure_class=failure_class,
                                diagnosis=f"{type(exc).__name__}: {exc}".strip())
        raise


def start(conn, template: Template, request: ReportRequest, *, dagster_run_id: str | None = None) -> str:
    """Validate, record and authorize a run; a refused run ends as failed (policy_violation)."""
    try:
        request.validate(template)
    except runs.RequestError as exc:
        audit.record_now(conn, actor=request.requester or "(none)", action="run.refused", target=template.label,
                         outcome="denied", tenant_id=request.tenant_id if isinstance(request.tenant_id, str) else None,
                         details={"reason": str(exc)})
        raise
    run_id = runs.create_run(conn, request, dagster_run_id=dagster_run_id)
    target = f"{template.label} for {request.tenant_id} {request.window_start}..{request.window_end}"
    try:
        runnable = governance.check_runnable(conn, template, trigger=request.trigger)
    except governance.NotRunnable as exc:
        audit.record_now(conn, actor=request.requester, action="run.denied", target=target, outcome="denied",
                         tenant_id=request.tenant_id, correlation_id=run_id, details={"reason": str(exc)})
        raise fail(conn, run_id, "policy_violation", str(exc)) from exc
    try:
        access.authorize(conn, request.requester, "run", target=target, tenant_id=request.tenant_id,
                         allowed_roles=template.roles.run, correlation_id=run_id)
    except access.AccessDenied as exc:
        raise fail(conn, run_id, "policy_violation", str(exc)) from exc
    audit.record_now(conn, actor=request.requester, action="run.requested", target=target, outcome="allowed",
                     tenant_id=request.tenant_id, correlation_id=run_id,
                     details={"trigger": request.trigger, "input_hash": request.input_hash,
                              **({"warning": runnable.warning} if runnable.warning else {})})
    return run_id


def take_snapshot(conn, run_id: str, template: Template, request: ReportRequest) -> dict[str, SectionSnapshot]:
    try:
        with reader_connection() as reader:
            sections = snapshot.take(conn, reader, run_id, template, request)
    except snapshot.SnapshotError as exc:
        raise fail(conn, run_id, "query_failure", str(exc)) from exc
    except dbt_manifest.DbtError as exc:
        raise fail(conn, run_id, "query_failure", str(exc)) from exc
    except psycopg2.OperationalError as exc:
        raise fail(conn, run_id, "source_unavailable", f"warehouse unavailable during snapshot: {exc}".strip()) from exc
    runs.update_run(
        conn,
        run_id,
        snapshot_tables={name: s.table for name, s in sections.items()},
        row_counts={name: s.row_count for name, s in sections.items()},
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
    result = run_gate_b(template, request, sections, connection_string=sqlalchemy_url(settings=settings))
    runs.update_run(conn, run_id, gate_passed=result.passed, gate_summary=result.summary())
    if not result.passed:
        raise fail(conn, run_id, "validation_failed", result.diagnosis())
    return result


def render_and_publish(
    conn, run_id: str, template: Template, request: ReportRequest, sections, *, settings: Settings | None = None
) -> Published:
    """Render every requested format from the snapshot into staging, then publish atomically."""
    settings = settings or get_settings()
    record = runs.get_run(conn, run_id)
    if not record or record["gate_passed"] is not True:
        # Publishing without a recorded Gate B pass is impossible by construction, not by convention.
        raise fail(conn, run_id, "validation_failed", "refusing to publish: no passed Gate B recorded for this run")
    period = request.period_key or f"{request.window_start}_{request.window_end}"
    final = artifacts.run_location(settings.artifacts_dir, request.tenant_id, template.key, period, run_id)
    staging = artifacts.staging_location(final)
    try:
        staging.mkdir(parents=True, exist_ok=False)
    except OSError as exc:
        raise fail(conn, run_id, "storage_failure", f"cannot create {staging}: {exc}") from exc
    try:
        try:
            context = report_context(conn, run_id, template, request, sections, record)
            files = _render(conn, template, request, sections, context, staging)
        except (psycopg2.Error, OSError, ValueError, RuntimeError) as exc:
            raise fail(conn, run_id, "format_error", f"rendering failed: {exc}".strip()) from exc
        manifest = build_manifest(template, request, record, sections, files, context)
        try:
            manifest_sha = artifacts.publish(staging, final, manifest)
        except StorageError as exc:
            raise fail(conn, run_id, "storage_failure", str(exc)) from exc
    except BaseException:
        artifacts.discard(staging)
        raise
    runs.update_run(conn, run_id, artifact_location=str(final), manifest_sha256=manifest_sha)
    runs.finish_run(conn, run_id, "completed")
    audit.record_now(conn, actor=request.requester, action="report.exported", target=str(final), outcome="succeeded",
                     tenant_id=request.tenant_id, correlation_id=run_id,
                     details={"files": [{k: f[k] for k in ("name", "sha256", "bytes")} for f in files],
                              "manifest_sha256": manifest_sha})
    return Published(run_id=run_id, location=final, manifest=manifest)


def _render(conn, template, request, sections, context, staging: Path) -> list[dict[str, Any]]:
    ordered = [sections[s.name] for s in template.sections if s.name in sections]
    files = []
    for fmt in template.formats:
        if fmt not in request.formats:
            continue
        path = staging / f"{template.key}.{EXTENSIONS[fmt]}"
        if fmt == "csv":
            rows = write_csv(conn, sections[template.primary_section], path)
        elif fmt == "json":
            rows = write_json(conn, context, ordered, path)
        elif fmt == "xlsx":
            rows = write_xlsx(conn, context, ordered, path)
        else:
            rows = write_pdf(conn, context, ordered, path)
        conn.commit()  # exporters read with server-side cursors inside a transaction
        files.append(artifacts.file_entry(path, fmt, rows))
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
    period_label = runs.window_label(request.window_start, request.window_end)
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
        generated_at=dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
        key_figures=figures,
        charts=tuple(c.as_spec() for c in template.charts),
        primary_section=template.primary_section,
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
        "redactions": [],
        "files": files,
        "generated_at": context.generated_at.isoformat(),
    }


def run_report(template: Template, request: ReportRequest, *, conn=None, settings=None, dagster_run_id=None) -> Published:
    """All steps in a row, in this process (CLI, tests)."""
    from .warehouse import connect

    own = conn is None
    conn = conn or connect(settings)
    try:
        run_id = start(conn, template, request, dagster_run_id=dagster_run_id)
        with guarded(conn, run_id, "query_failure"):
            sections = take_snapshot(conn, run_id, template, request)
        with guarded(conn, run_id, "validation_failed"):
            gate_b(conn, run_id, template, request, sections, settings=settings)
        with guarded(conn, run_id, "format_error"):
            return render_and_publish(conn, run_id, template, request, sections, settings=settings)
    finally:
        if own:
            conn.close()

