"""How a report run reads in the Dagster UI: owners, Gate B counts, the files as a table, links a
browser can open, and each run (asset job, ad-hoc, CLI) on its published asset's history."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from orchestration.defs.partitions import partitions_for
from orchestration.links.tokens import BASE_URL_ENV, DEFAULT_BASE_URL
from orchestration.runs import periods


def owners(owner: str | None) -> list[str]:
    """Dagster owners: an e-mail address as it is, anything else as a team."""
    if not owner:
        return []
    return [owner] if "@" in owner else [f"team:{owner}"]


def link_service() -> str:
    return (os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def gate_b(summary: dict[str, Any] | None) -> dict[str, Any]:
    """Gate B's outcome as counts (and the failing expectations as text), not a JSON blob."""
    summary = summary or {}
    critical, warnings = summary.get("critical_failures") or [], summary.get("warnings") or []
    evaluated = int(summary.get("evaluated") or 0)
    metadata: dict[str, Any] = {
        "evaluated": dg.MetadataValue.int(evaluated),
        "met": dg.MetadataValue.int(evaluated - len(critical) - len(warnings)),
        "critical_failures": dg.MetadataValue.int(len(critical)),
        "warnings": dg.MetadataValue.int(len(warnings)),
    }
    if critical or warnings:
        metadata["failed_expectations"] = dg.MetadataValue.md("\n".join(f"- {line}" for line in critical + warnings))
    return metadata


FILE_COLUMNS = dg.TableSchema(columns=[
    dg.TableColumn("file", "string"), dg.TableColumn("format", "string"), dg.TableColumn("variant", "string"),
    dg.TableColumn("rows", "int"), dg.TableColumn("bytes", "int"), dg.TableColumn("sha256", "string"),
])


def files_table(files: list[dict[str, Any]]) -> dg.MetadataValue:
    return dg.MetadataValue.table(
        records=[dg.TableRecord({"file": f["name"], "format": f["format"], "variant": f.get("variant", "internal"),
                                 "rows": int(f.get("rows") or 0), "bytes": int(f["bytes"]), "sha256": f["sha256"]})
                 for f in files],
        schema=FILE_COLUMNS,
    )


def published(run_id: str, manifest: dict[str, Any], location: Any) -> dict[str, Any]:
    """The published run: its files as a table, and where a browser (or a colleague) gets them."""
    base = link_service()
    return {
        "report_run_id": run_id,
        "input_hash": manifest["input_hash"],
        "window": f"{manifest['window']['start']} .. {manifest['window']['end_exclusive']} (end exclusive)",
        "files": files_table(manifest["files"]),
        "run (Reporting API)": dg.MetadataValue.url(f"{base}/reports/runs/{run_id}"),
        "download link": dg.MetadataValue.text(
            f"GET {base}/reports/runs/{run_id}/download?format=csv|xlsx|json (API token), or "
            f"nexus-reports links create {run_id} --format pdf --for PRINCIPAL --as USER"),
        "stored at": dg.MetadataValue.text(str(location)),
    }


def partition_of(template, request, instance) -> dg.MultiPartitionKey | None:
    """The published asset's partition this request is, or None (an ad-hoc window, a period before
    the partitions start, or a report definition, which has no asset)."""
    if template.cadence not in ("monthly", "weekly", "daily") or not request.period_key:
        return None
    period = request.window_start.isoformat()  # Dagster's key: the period's first day
    key = dg.MultiPartitionKey({"tenant": request.tenant_id, "period": period})
    time_keys = partitions_for(template).get_partitions_def_for_dimension("period")
    if not time_keys.has_partition_key(period):
        return None
    if not instance.has_dynamic_partition("tenants", request.tenant_id):
        instance.add_dynamic_partitions("tenants", [request.tenant_id])  # what the tenant sensor would do
    return key


def on_published_asset(template, request, run_id: str, manifest: dict[str, Any], location: Any,
                       instance) -> dg.AssetMaterialization | dg.AssetObservation:
    """An ad-hoc or CLI run in the published asset's history: a materialization of its partition,
    or an observation when its window is not one (the asset's partitions are whole periods)."""
    asset = dg.AssetKey([template.key, "published"])
    metadata = published(run_id, manifest, location)
    partition = partition_of(template, request, instance)
    if partition is not None:
        return dg.AssetMaterialization(asset_key=asset, partition=partition, metadata=metadata,
                                       description=f"ad-hoc run {run_id} ({request.trigger})")
    return dg.AssetObservation(asset_key=asset, metadata={
        **metadata, "window_label": periods.window_label(request.window_start, request.window_end)},
        description=f"ad-hoc run {run_id} for a window that is not a partition")
