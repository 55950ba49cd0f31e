"""Reruns: a published run's recorded request rendered again, into a scratch folder, and compared
file by file with what it published.

A rerun publishes nothing: no run record, no store write, no index row; it renders with the
recorded run's id, record and generation time (the manifest's `generated_at`), so every format is
expected to come out byte for byte: CSV and JSON carry no time of their own, XLSX and PDF carry
the recorded one (runs/publish.render_files reads no clock and draws no random id).

Its data: the run's own snapshot tables while they exist. When they are gone, each section is
queried again from the warehouse, as the run did (report_reader under RLS, the recorded tenant and
row scope), into scratch snapshot tables dropped afterwards; the sources' watermarks are measured
again and each one that moved since the recorded run is named, since then the data may differ.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestration.artifacts.store import sha256_file
from orchestration.catalog.templates import Template
from orchestration.db.warehouse import reader_connection
from orchestration.runs import engine, freshness, publish, snapshot
from orchestration.runs.run_record import RunRecord


@dataclass(frozen=True)
class FileComparison:
    name: str
    published_sha256: str
    rerun_sha256: str | None  # None: the rerun wrote no file of this name

    @property
    def same(self) -> bool:
        return self.rerun_sha256 == self.published_sha256

    @property
    def line(self) -> str:
        if self.same:
            return f"same {self.name}: sha256 {self.published_sha256}"
        rerun = self.rerun_sha256 or "(not written by the rerun)"
        return f"DIFFERS {self.name}: published sha256 {self.published_sha256}, rerun sha256 {rerun}"


@dataclass(frozen=True)
class Rerun:
    run_id: str
    source: str  # 'snapshot' (the run's own tables) or 'warehouse' (queried again)
    generated_at: dt.datetime
    moved_watermarks: tuple[str, ...]  # sources loaded since the recorded run (a warehouse rerun)
    files: tuple[FileComparison, ...]

    @property
    def reproduced(self) -> bool:
        return bool(self.files) and all(f.same for f in self.files)


def snapshot_exists(conn, record: RunRecord) -> bool:
    """Every snapshot table the run recorded is still there."""
    if not record.snapshot_tables:
        return False
    with conn.cursor() as cur:
        cur.execute("select count(to_regclass(t)) from unnest(%s::text[]) as t", (list(record.snapshot_tables.values()),))
        return cur.fetchone()[0] == len(record.snapshot_tables)


def moved_watermarks(conn, template: Template, record: RunRecord) -> tuple[str, ...]:
    """Each source whose newest load differs from the one the run recorded, named with both."""
    now = freshness.watermarks(freshness.measure(conn, template, record.tenant_id, record.window_end))
    recorded: Mapping[str, Any] = record.source_watermarks or {}
    return tuple(f"{source}: recorded {recorded.get(source)}, now {now[source]}"
                 for source in sorted(now) if now[source] != recorded.get(source))


def rerun(conn, record: RunRecord, template: Template, manifest: dict[str, Any], folder: Path) -> Rerun:
    """Render `record`'s request again into `folder` (empty, outside the artifact store) and
    compare each file the manifest lists. In the caller's transaction, except for what the run
    engine's steps commit on their own (snapshot tables, the renderers' cursors)."""
    generated_at = dt.datetime.fromisoformat(manifest["generated_at"])
    request = record.request_object()
    if snapshot_exists(conn, record):
        sections = engine.sections_of(template, record)
        publish.render_files(conn, record.run_id, template, request, sections, record, folder, generated_at)
        return _compared(record, "snapshot", generated_at, (), manifest, folder)
    moved = moved_watermarks(conn, template, record)
    scratch = f"{record.run_id}x{secrets.token_hex(3)}"  # its own tables: never the run's, never another rerun's
    try:
        with reader_connection() as reader:
            sections = snapshot.take(conn, reader, scratch, template, request)
        publish.render_files(conn, record.run_id, template, request, sections, record, folder, generated_at)
    finally:
        snapshot.drop(conn, scratch, [s.name for s in template.sections])
    return _compared(record, "warehouse", generated_at, moved, manifest, folder)


def _compared(record: RunRecord, source: str, generated_at: dt.datetime, moved: tuple[str, ...],
              manifest: dict[str, Any], folder: Path) -> Rerun:
    files = tuple(FileComparison(entry["name"], entry["sha256"], _sha256_if_written(folder / entry["name"]))
                  for entry in manifest["files"])
    return Rerun(record.run_id, source, generated_at, moved, files)



def _sha256_if_written(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None
