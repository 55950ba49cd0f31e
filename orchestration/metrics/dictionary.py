"""The metric dictionary as a list and as a document, generated from the dbt manifest.

`docs/metric-dictionary.md` is generated, checked in, and checked in CI to equal what the
manifest and templates say now: a formula cannot change without the document changing.
"""

from __future__ import annotations

from typing import Any

from orchestration.catalog import templates as catalog
from orchestration.metrics import dbt_manifest
from orchestration.settings import REPO_ROOT

DOC_PATH = REPO_ROOT / "docs" / "metric-dictionary.md"


def dictionary(manifest: dict[str, Any] | None = None, templates: list[catalog.Template] | None = None) -> list[dict[str, Any]]:
    manifest = manifest or dbt_manifest.load_manifest()
    templates = templates if templates is not None else catalog.load_all()
    entries = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model":
            continue
        meta = node.get("config", {}).get("meta") or {}
        version = node.get("version")
        version = int(version) if version is not None else None
        for metric in meta.get("metrics", []):
            users = sorted(
                t.label for t in templates
                if any((m.id, m.model, m.version) == (metric["id"], node["name"], version) for m in t.metrics)
            )
            entries.append({
                "id": metric["id"],
                "label": metric.get("label", ""),
                "model": node["name"],
                "model_version": version,
                "relation": f"{node['schema']}.{node['alias']}",
                "owner": meta.get("owner", ""),
                "formula": metric["formula"],
                "formula_version": metric["formula_version"],
                "unit": metric.get("unit", ""),
                "grain": metric.get("grain", ""),
                "deprecation_date": node.get("deprecation_date"),
                "templates": users,
            })
    return sorted(entries, key=lambda e: (e["id"], e["model"], e["model_version"] or 0))


def render_markdown(entries: list[dict[str, Any]]) -> str:
    lines = [
        "# Metric dictionary",
        "",
        "Generated from the dbt manifest by `nexus-reports metrics doc`; CI checks it is current.",
        "Each metric is defined by a versioned dbt model (`dbt_project/models/metrics/`); a formula",
        "change is a new model version, and the old version stays buildable until its deprecation date.",
        "",
        "| metric | model (version) | owner | formula (version) | unit | grain | used by |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in entries:
        version = f"v{e['model_version']}" if e["model_version"] is not None else "unversioned"
        formula = e["formula"].replace("|", "\\|")
        lines.append(
            f"| `{e['id']}` {e['label']} | `{e['model']}` {version} | {e['owner']} | `{formula}` (v{e['formula_version']}) "
            f"| {e['unit']} | {e['grain']} | {', '.join(e['templates']) or '-'} |"
        )
    return "\n".join(lines) + "\n"
