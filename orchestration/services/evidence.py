"""The signoff evidence pack use case: read what the nine documents need, write the dated folder.

A platform admin builds it (policy action `evidence`; the pack shows every tenant's template
versions and the platform's KPIs). The folder is written as `<name>.partial` and renamed when
whole, so a reader never finds half a pack. Every build is audited (`evidence.built`): who, on
which host, into which folder, and each item's status. An incomplete pack is still written,
so the summary can be read; `Pack.complete` tells the adapter whether every item passed.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from orchestration.access import audit, policy, tenants
from orchestration.artifacts import which_store
from orchestration.artifacts.store import StorageError
from orchestration.catalog import templates as catalog
from orchestration.errors import Invalid
from orchestration.evidence import (
    access_matrix,
    governance_policy,
    kpi_baseline,
    metric_dictionary,
    retention_redaction,
    run_engine,
    runbook,
    signoff,
    sources,
    suite_results,
)
from orchestration.evidence.document import Document
from orchestration.evidence.pdf import write_pdf
from orchestration.evidence.signoff import Item, PackFile
from orchestration.governance import lifecycle
from orchestration.runs import periods, records
from orchestration.services import kpis

PDF_NAME = "evidence_pack.pdf"


@dataclass(frozen=True)
class PackRequest:
    actor: str
    out: Path
    period: str | None = None  # YYYY-MM; default: the last complete month
    junit: Path | None = None  # default: sources.default_junit()
    bench_dir: Path | None = None  # default: sources.bench_dir()
    now: dt.datetime | None = None


@dataclass(frozen=True)
class Pack:
    folder: Path
    period: str
    items: tuple[Item, ...]  # the nine, the signoff summary last
    pdf: PackFile
    pages: int

    @property
    def complete(self) -> bool:
        return signoff.complete(list(self.items))


def _window(period: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start, end = periods.month_window(period)
    since = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    if since > now:
        raise Invalid(f"period {period} has not started yet: the KPI baseline needs a period up to now")
    return since, min(dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC), now)


KPI_TEMPLATE = "reporting_kpis"


def reporting_kpis_pdf(conn, period: str) -> tuple[str, bytes] | None:
    """The file name and bytes of the PDF of the newest published platform run of the
    `reporting_kpis` template for `period`, for item 8; None when there is none (item 8 then holds
    the KPI table alone, and says so)."""
    with conn:
        record = records.newest_completed(conn, KPI_TEMPLATE, tenants.PLATFORM, period)
    if record is None or not record.artifact_location:
        return None
    try:
        store, key = which_store.for_location(record.artifact_location)
        name = next(f["name"] for f in store.read_manifest(key)["files"]
                    if f["format"] == "pdf" and f.get("variant", "internal") == "internal")
        with store.open(key, name) as stream:
            return name, stream.read()
    except (StopIteration, StorageError, OSError, KeyError, ValueError):
        return None  # published without a PDF, or its files are gone: the table stands alone


def _documents(conn, request: PackRequest, period: str, now: dt.datetime) -> tuple[list[Document], dict[int, list]]:
    """The eight generated documents, and the extra source files each brings (name, path or bytes)."""
    since, until = _window(period, now)
    with conn:
        versions = lifecycle.all_versions(conn)
    kpi_set = kpis.kpis(conn, actor=request.actor, since=since, now=until)
    kpi_report = reporting_kpis_pdf(conn, period)
    junit = request.junit or sources.default_junit()
    bench_dir = request.bench_dir or sources.bench_dir()
    extra: dict[int, list] = {7: [], 8: []}
    if junit.is_file():
        extra[7].append(("07_junit.xml", junit))
    extra[7] += [(f"07_bench_{b.name}.txt", b.path) for b in suite_results.bench_outputs(bench_dir)]
    if kpi_report:
        extra[8].append((f"08_{kpi_report[0]}", kpi_report[1]))
    documents = [
        governance_policy.document(versions),
        metric_dictionary.document(),
        run_engine.document(),
        retention_redaction.document(catalog.load_all()),
        runbook.document(),
        access_matrix.document(),
        suite_results.document(junit, bench_dir),
        kpi_baseline.document(kpi_set, period, template_pdf=f"08_{kpi_report[0]}" if kpi_report else None),
    ]
    return documents, extra


def _write(folder: Path, name: str, source: str | bytes | Path) -> PackFile:
    path = folder / name
    if isinstance(source, Path):
        shutil.copyfile(source, path)
    elif isinstance(source, bytes):
        path.write_bytes(source)
    else:
        path.write_text(source, encoding="utf-8")
    return signoff.hashed(folder, name)


def build_pack(conn, request: PackRequest) -> Pack:
    now = request.now or dt.datetime.now(dt.UTC)
    period = request.period or periods.last_complete_month(now.date())
    periods.month_window(period)  # a malformed period is refused before anything is read
    policy.authorize(conn, request.actor, "evidence", target=f"evidence pack {period}", tenant_id=policy.ALL_TENANTS)
    documents, extra = _documents(conn, request, period, now)
    generated = now.strftime("%Y-%m-%d %H:%M UTC")
    folder = request.out.resolve() / f"evidence-{period}-{now:%Y%m%dT%H%M%SZ}"
    if folder.exists():
        raise Invalid(f"{folder} already exists")
    partial = folder.with_name(folder.name + ".partial")
    partial.mkdir(parents=True)
    try:
        items = [Item(d, (_write(partial, d.file_name, d.markdown),
                          *(_write(partial, name, source) for name, source in extra.get(d.item, []))))
                 for d in documents]
        summary = signoff.document(items, period=period, generated=generated, actor=request.actor)
        items.append(Item(summary, (_write(partial, summary.file_name, summary.markdown),)))
        pages = write_pdf([i.document for i in items], partial / PDF_NAME, period=period, generated=generated,
                          actor=request.actor)
        pdf = signoff.hashed(partial, PDF_NAME)
        every = [f for i in items for f in i.files] + [pdf]
        (partial / signoff.SUMS_FILE).write_text("".join(f"{f.sha256}  {f.name}\n" for f in every), encoding="utf-8")
        os.replace(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    pack = Pack(folder, period, tuple(items), pdf, pages)
    with conn:
        audit.record(conn, actor=request.actor, action="evidence.built", target=str(folder), outcome="succeeded",
                     details={"period": period, "host": socket.gethostname(), "folder": str(folder),
                              "complete": pack.complete, "pdf_sha256": pdf.sha256,
                              "items": {str(i.document.item): i.document.status for i in items}})
    return pack
