"""Rendering a run's formats from its snapshot and publishing them atomically with a manifest.

Every requested format (and the external, redacted variant when the template has one) is
written into a local staging folder, read back by the output checks, then handed to the
artifact store, which makes the files and the manifest appear together or not at all. The run
is completed, with its artifact index rows, in one transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2

from orchestration.access import audit
from orchestration.artifacts import index as artifact_index
from orchestration.artifacts import retention, which_store
from orchestration.artifacts.store import (
    SIGNATURE,
    ArtifactStore,
    StorageError,
    file_entry,
    manifest_bytes,
    run_key,
    staging_location,
)
from orchestration.catalog.definition_template import is_definition_key
from orchestration.catalog.templates import Template
from orchestration.db import warehouse
from orchestration.db.warehouse import reader_connection, reader_transaction
from orchestration.exports import formats, numbers, redaction
from orchestration.exports.sections import KeyFigure, RedactionNote, ReportContext
from orchestration.metrics import dbt_manifest
from orchestration.provenance import approval, envelope, keys
from orchestration.runs import records, snapshot, stage_log, supervisor
from orchestration.runs.failures import RunFailed
from orchestration.runs.periods import window_label
from orchestration.runs.request import ReportRequest
from orchestration.runs.run_record import RunRecord
from orchestration.settings import Settings, get_settings


@dataclass(frozen=True)
class Published:
    run_id: str
    location: Path | str  # the local folder (Path), or s3://bucket/<prefix>/<run key> (str)
    manifest: dict[str, Any]
    key: str = ""  # the run key in its store: <tenant>/<template>/<period>/<run_id>
    store: str = "local"  # 'local' | 's3'


def render_and_publish(
    conn, run_id: str, template: Template, request: ReportRequest, sections, *, settings: Settings | None = None,
    store: ArtifactStore | None = None,
) -> Published:
    """Render every requested format from the snapshot into staging, then publish atomically."""
    settings = settings or get_settings()
    record = _gate_passed_record(conn, run_id)
    period = request.period_key or f"{request.window_start}_{request.window_end}"
    key = run_key(request.tenant_id, template.key, period, run_id)
    # Every store renders into a local staging folder first; the store publishes it atomically.
    staging = staging_location(settings.artifacts_dir / key)
    store = _open_staging(conn, run_id, store, settings, staging)
    try:
        supervisor.checkpoint(conn, run_id, "render", admin_pid=conn.get_backend_pid())
        started = time.monotonic()
        # second precision: every file and the manifest say the same instant, and a rerun reuses it
        generated_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
        context, files, redactions = _render_checked(conn, run_id, template, request, sections, record, staging,
                                                     generated_at)
        manifest = build_manifest(template, request, record, sections, files, context)
        manifest["redactions"] = redactions
        manifest["approval"], manifest["gate_c"] = _approvals(conn, run_id, template, record)
        _log_rendered(files, time.monotonic() - started)
        supervisor.checkpoint(conn, run_id, "publish")
        _sign(conn, run_id, manifest, staging, settings)
        try:
            result = store.publish(staging, key, manifest)
        except StorageError as exc:
            raise supervisor.fail(conn, run_id, "storage_failure", str(exc)) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # after a local publish it is gone already (renamed into place)
    _complete(conn, run_id, template, record, store, key, result, files)
    final = Path(result.location) if store.kind == "local" else result.location
    _audit_published(conn, request, records.get_run(conn, run_id), store, final, files, result.manifest_sha256)
    stage_log.emit(f"publish: {len(files)} files and manifest.json at {final}")
    return Published(run_id=run_id, location=final, manifest=manifest, key=key, store=store.kind)


def _approvals(conn, run_id: str, template: Template, record: RunRecord) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The approvals the manifest names: the template's (or definition's) and Gate C's (a read,
    ended here: publish commits on its own)."""
    try:
        found = approval.approval_for(conn, template)
        gate_c = approval.gate_c_for(conn, record.schedule_id, template.sensitivity)
        conn.commit()
    except psycopg2.Error as exc:
        raise supervisor.fail_unless_connection_lost(conn, run_id, "format_error", exc, "reading the approval failed") from exc
    return found, gate_c


def _sign(conn, run_id: str, manifest: dict[str, Any], staging: Path, settings: Settings) -> None:
    """The signed envelope of the manifest's exact bytes, staged beside the files: the store
    publishes it with them, before the manifest, so a visible run is always a signed one."""
    try:
        key, _ = keys.ensure_key(settings)  # a deployment that never ran `init` (tests, embedded) gets its key here
        (staging / SIGNATURE).write_bytes(envelope.sign(manifest_bytes(manifest), key))
    except (OSError, keys.SigningKeyError) as exc:
        raise supervisor.fail(conn, run_id, "storage_failure", f"signing the manifest failed: {exc}") from exc


def _log_rendered(files: list[dict[str, Any]], seconds: float) -> None:
    for entry in files:
        stage_log.emit(f"render: {entry['format']} ({entry['variant']}) {entry['name']}, {entry['rows']:,} rows, "
                       f"{stage_log.size(entry['bytes'])}")
    stage_log.emit(f"render: {len(files)} files rendered and checked in {seconds:.1f}s")


def _gate_passed_record(conn, run_id: str) -> RunRecord:
    record = records.get_run(conn, run_id)
    if not record or record.gate_passed is not True:
        # Publishing without a recorded Gate B pass is impossible by construction, not by convention.
        raise supervisor.fail(conn, run_id, "validation_failed", "refusing to publish: no passed Gate B recorded for this run")
    return record


def _open_staging(conn, run_id: str, store: ArtifactStore | None, settings: Settings, staging: Path) -> ArtifactStore:
    try:
        store = store or which_store.get_store(settings)
        staging.mkdir(parents=True, exist_ok=False)
    except (OSError, StorageError) as exc:
        raise supervisor.fail(conn, run_id, "storage_failure", f"cannot stage {staging}: {exc}") from exc
    return store


def render_files(conn, run_id: str, template: Template, request: ReportRequest, sections, record, folder: Path,
                 generated_at: dt.datetime, *, failed: list[dict[str, Any]] | None = None
                 ) -> tuple[ReportContext, list[dict[str, Any]], list[dict[str, Any]]]:
    """Every file of every variant rendered into `folder`: (context, file entries, the redactions
    applied to the external variant). The same snapshot, record and `generated_at` give the same
    bytes (provenance rerun relies on it): nothing here reads the clock or draws a random id.
    A part that fails is added to `failed` and the others are still rendered; without a `failed`
    list, the first failed part raises."""
    collect = failed is not None
    failed = failed if collect else []
    context = report_context(conn, run_id, template, request, sections, record, generated_at)
    files = _render(conn, template, request, sections, context, folder, failed=failed)
    redactions: list[dict[str, Any]] = []
    if template.redaction.external_variant:
        planned = redaction.plan(template)
        external = redaction.redacted_sections(conn, sections, planned, request.tenant_id, snapshot.ORDINAL)
        applied = [r for by_column in planned.values() for r in by_column.values()]
        files += _render(conn, template, request, external, _external_context(context, template, sections, applied),
                         folder, variant="external", failed=failed)
        redactions = [r.as_manifest() for r in applied]
    if failed and not collect:
        raise ValueError("; ".join(f"{p['part']}: {p['error']}" for p in failed))
    return context, files, redactions


def _render_checked(conn, run_id: str, template: Template, request: ReportRequest, sections, record,
                    staging: Path, generated_at: dt.datetime
                    ) -> tuple[ReportContext, list[dict[str, Any]], list[dict[str, Any]]]:
    """render_files, each file read back by its format's check; any failed part ends the run and
    publishes nothing."""
    failed: list[dict[str, Any]] = []
    try:
        context, files, redactions = render_files(conn, run_id, template, request, sections, record, staging,
                                                  generated_at, failed=failed)
    except (psycopg2.Error, OSError, ValueError, RuntimeError) as exc:
        raise supervisor.fail_unless_connection_lost(conn, run_id, "format_error", exc, "rendering failed") from exc
    for entry in files:
        failed += [_failed_part(entry["format"], entry["variant"], entry["sections"], f"output check failed: {problem}")
                   for problem in formats.check_files(staging, [entry], context)]
        entry.pop("_sections")
    if failed:
        # Nothing is published: the run ends failed and names every part that failed, not just the first.
        records.update_run(conn, run_id, failed_parts=failed)
        raise supervisor.fail(conn, run_id, "format_error", f"{len(failed)} part(s) failed, nothing published: "
                              + "; ".join(f"{p['part']}: {p['error']}" for p in failed))
    return context, files, redactions


def _failed_part(fmt: str, variant: str, sections: list[str], error: str) -> dict[str, Any]:
    return {"part": f"{fmt} ({variant})", "format": fmt, "variant": variant, "sections": sections, "error": error}


def _complete(conn, run_id: str, template: Template, record, store: ArtifactStore, key: str, result,
              files: list[dict[str, Any]]) -> None:
    """End the run as completed with its location and index rows, in one transaction; if it ended
    meanwhile (cancelled, reaped), what was just published is taken back."""
    def complete(cur) -> None:  # in the transaction that ends the run: location and index rows
        records.update_run(conn, run_id, cur=cur, artifact_location=result.location, manifest_sha256=result.manifest_sha256)
        artifact_index.record_published(cur, record=record, template=template, store_kind=store.kind,
                                        location=result.location, keys=result.keys, files=files,
                                        retention_days=retention.retention_days(template))

    if not records.finish_run(conn, run_id, "completed", then=complete):
        store.delete(key)
        supervisor.forget(run_id)
        ended = records.get_run(conn, run_id)
        raise RunFailed(run_id, ended.failure_class or "cancelled", ended.diagnosis or "the run ended while publishing")
    supervisor.forget(run_id)


def _audit_published(conn, request: ReportRequest, record, store: ArtifactStore, final, files, manifest_sha: str) -> None:
    run_id = record.run_id
    if record.supersedes_run_id:
        records.update_run(conn, record.supersedes_run_id, superseded_by=run_id)
        audit.record_now(conn, actor=request.requester, action="run.superseded", target=record.supersedes_run_id,
                         outcome="succeeded", tenant_id=request.tenant_id, correlation_id=record.trace_id,
                         details={"superseded_by": run_id})
    audit.record_now(conn, actor=request.requester, action="report.exported", target=str(final), outcome="succeeded",
                     tenant_id=request.tenant_id, correlation_id=record.trace_id,
                     details={"run_id": run_id, "files": [{k: f[k] for k in ("name", "sha256", "bytes")} for f in files],
                              "manifest_sha256": manifest_sha, "store": store.kind, **supervisor.timing(record)})


def _external_context(context: ReportContext, template: Template, sections, applied) -> ReportContext:
    """The external variant's context: it says it is redacted, under which policy, and what."""
    def label(section: str, column: str) -> str:
        found = [c for c in sections[section].columns if c.name == column] if section in sections else []
        return found[0].header if found else column

    notes = tuple(RedactionNote(column=label(r.section, r.column), action=r.action, rationale=r.rationale)
                  for r in applied)
    return dataclasses.replace(context, variant="external", redactions=notes,
                               redaction_policy=f"the redaction policy of {template.key} v{template.version}")


def file_stem(request: ReportRequest, template: Template, variant: str) -> str:
    """What a downloaded file is named by: `<tenant>_<template>_<period>_<variant>` (the format
    adds the section a CSV holds and the classification marking)."""
    period = request.period_key or f"{request.window_start.isoformat()}_{request.window_end.isoformat()}"
    return f"{request.tenant_id}_{template.key}_{period}_{variant}"


def _render(conn, template, request, sections, context, staging: Path, *, variant: str = "internal",
            failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every requested format of one variant; each file entry says which sections (and columns)
    it holds, for the output checks. A format that fails is added to `failed` and the others are
    still rendered, so the run names every failed part (a lost connection still ends it at once)."""
    ordered = [sections[s.name] for s in template.sections if s.name in sections]
    files = []
    stem = file_stem(request, template, variant)
    for fmt in template.formats:
        if fmt not in request.formats:
            continue
        export = formats.get(fmt)
        # A one-table format names the section it holds, unless the report has only that one.
        partial = not export.whole_report and len(template.sections) > 1
        path = staging / export.file_name(stem, marking=context.marking, section=template.primary_section if partial else "")
        shown = export.shown_sections(ordered, sections[template.primary_section])
        try:
            rows = export.write(conn, context, shown, path)
            conn.commit()  # exporters read with server-side cursors inside a transaction
        except (psycopg2.Error, OSError, ValueError, RuntimeError) as exc:
            if not warehouse.usable(conn):
                raise
            conn.rollback()
            path.unlink(missing_ok=True)
            failed.append(_failed_part(fmt, variant, [s.name for s in shown], f"{type(exc).__name__}: {exc}"))
            continue
        entry = file_entry(path, fmt, rows)
        if fmt == "xlsx":
            from orchestration.exports import xlsx_export  # with its writer: not for every importer of publish

            entry["sheets"] = xlsx_export.data_sheets(path)
        entry["variant"] = variant
        entry["classification"] = context.marking
        entry["sections"] = [s.name for s in shown]
        if partial:
            entry["holds"] = one_section_note(export.name, template.primary_section)
        entry["_sections"] = shown  # for the output checks; not written to the manifest
        files.append(entry)
    return files


def one_section_note(fmt: str, section: str) -> str:
    return (f"the {fmt.upper()} holds section {section} only (the report's primary table: a {fmt.upper()} is one "
            "table); every section is in the XLSX (one sheet each) and the JSON of this run")


def report_context(conn, run_id, template: Template, request: ReportRequest, sections, record,
                   generated_at: dt.datetime) -> ReportContext:
    figures: tuple[KeyFigure, ...] = ()
    if template.key_figures and template.key_figures.section in sections:
        snap = sections[template.key_figures.section]
        with conn, conn.cursor() as cur:
            cur.execute(f"select * from {snap.table} order by {snapshot.ORDINAL} limit 1")
            row = cur.fetchone()
            names = [d.name for d in cur.description]
        values = dict(zip(names, row, strict=True)) if row else {}
        figures = tuple(
            KeyFigure(label=f.label, value=numbers.plain(values.get(f.column)), unit=f.unit)
            for f in template.key_figures.figures
        )
    tenant_name = request.tenant_id
    with reader_connection() as reader, reader_transaction(reader, request.tenant_id) as cur:
        cur.execute(f"select name from {dbt_manifest.model('tenants').relation} where tenant_id = %s", (request.tenant_id,))
        row = cur.fetchone()
        if row:
            tenant_name = row[0]
    period_label = window_label(request.window_start, request.window_end)
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
        input_hash=record.input_hash,
        generated_at=generated_at,
        key_figures=figures,
        charts=tuple(c.as_spec() for c in template.charts),
        primary_section=template.primary_section,
        degraded=bool(record.degraded),
        degraded_reason=record.degraded_reason or "",
        sensitivity=template.sensitivity,
    )


def build_manifest(template, request, record, sections, files, context) -> dict[str, Any]:
    manifest_data = dbt_manifest.load_manifest()
    metrics = [
        dbt_manifest.metric_definition(m.id, m.model, m.version, manifest_data) for m in template.metrics
    ]
    return {
        "manifest_version": 1,
        "run_id": record.run_id,
        "dagster_run_id": record.dagster_run_id,
        "correlation_id": record.correlation_id,  # the X-Request-ID of the API request that asked for it
        "input_hash": record.input_hash,
        "request": {**request.canonical(), "trigger": request.trigger, "period_key": request.period_key},
        "template": {
            "key": template.key,
            "version": template.version,
            "content_hash": template.content_hash,
            "owner": template.owner,
            "sensitivity": template.sensitivity,
            **({"report_definition": {"id": template.key, "version": template.version, "sql": template.sections[0].sql}}
               if is_definition_key(template.key) else {}),
        },
        "classification": {"sensitivity": template.sensitivity, "marking": context.marking},
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
        "gate_b": record.gate_summary,
        "degraded": {"degraded": bool(record.degraded), "reason": record.degraded_reason},
        "source_watermarks": record.source_watermarks,
        "supersedes_run_id": record.supersedes_run_id,
        "redactions": [],
        "files": files,
        "generated_at": context.generated_at.isoformat(),
    }
