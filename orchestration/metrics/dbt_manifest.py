"""The dbt project as the metric dictionary: running dbt and reading its manifest.

Templates name models as (model, version); the manifest turns that into a relation and the
metric metadata (owner, formula, formula version) a run records in its manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestration.settings import DBT_PROJECT_DIR

MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
PROJECT_NAME = "nexus_reports"


class DbtError(RuntimeError):
    pass


def dbt_executable() -> str:
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


# `dbt parse` reads the profile but never connects: it needs no running server.
PARSE_ONLY_ENV = {
    "NEXUS_PG_HOST": "127.0.0.1",
    "NEXUS_PG_PORT": "5432",
    "NEXUS_PG_USER": "postgres",
    "NEXUS_PG_PASSWORD": "",
    "NEXUS_PG_DBNAME": "nexus",
}


def run_dbt(args: list[str], *, settings=None, capture: bool = False, connect: bool = True) -> subprocess.CompletedProcess:
    """Run the dbt CLI against the warehouse; raises DbtError with dbt's output on failure."""
    from orchestration.db.warehouse import dbt_env

    given = {k: v for k, v in os.environ.items() if k in PARSE_ONLY_ENV}
    profile_env = dbt_env(settings) if connect else {**PARSE_ONLY_ENV, **given}
    env = {**os.environ, **profile_env, "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)}
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    proc = subprocess.run(
        [dbt_executable(), *args, "--project-dir", str(DBT_PROJECT_DIR)],
        cwd=DBT_PROJECT_DIR,
        env=env,
        text=True,
        capture_output=capture,
    )
    if proc.returncode != 0:
        detail = (proc.stdout or "")[-4000:] if capture else "see dbt's output above"
        raise DbtError(f"dbt {' '.join(args)} failed (exit {proc.returncode}): {detail}")
    return proc


def parse(target_path: Path | None = None) -> Path:
    """Write the manifest (dbt parse) that Dagster and the catalog read."""
    args = ["parse", "--quiet"]
    if target_path:
        args += ["--target-path", str(target_path)]
    run_dbt(args, connect=False, capture=True)
    return (target_path or MANIFEST_PATH.parent) / "manifest.json"


def build(settings=None, *, select: str | None = None) -> None:
    args = ["build"] + (["--select", select] if select else [])
    run_dbt(args, settings=settings, capture=True)


_cache: dict[Path, tuple[float, dict[str, Any]]] = {}


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    if not path.exists():
        raise DbtError(f"dbt manifest not found at {path}: run `make manifest` (dbt parse) first")
    mtime = path.stat().st_mtime
    cached = _cache.get(path)
    if cached is None or cached[0] != mtime:
        _cache[path] = (mtime, json.loads(path.read_text()))
    return _cache[path][1]


def manifest_hash(path: Path = MANIFEST_PATH) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    unique_id: str
    name: str
    version: int | None
    schema: str
    alias: str
    meta: dict[str, Any]
    deprecation_date: str | None = None  # ISO timestamp from the model version's YAML

    def deprecated_at(self, when: dt.datetime) -> bool:
        if not self.deprecation_date:
            return False
        cutoff = dt.datetime.fromisoformat(self.deprecation_date.replace("Z", "+00:00"))
        if cutoff.tzinfo is None:
            cutoff = cutoff.replace(tzinfo=dt.UTC)
        return cutoff <= when

    @property
    def relation(self) -> str:
        return f'"{self.schema}"."{self.alias}"'


def model(name: str, version: int | None = None, manifest: dict[str, Any] | None = None) -> ModelInfo:
    """The model `name` at `version` (the unversioned model when version is None)."""
    manifest = manifest or load_manifest()
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["name"] != name:
            continue
        node_version = node.get("version")
        if node_version is not None:
            node_version = int(node_version)
        if node_version == version:
            return ModelInfo(
                unique_id=node["unique_id"],
                name=name,
                version=node_version,
                schema=node["schema"],
                alias=node["alias"],
                meta=dict(node.get("config", {}).get("meta") or node.get("meta") or {}),
                deprecation_date=node.get("deprecation_date"),
            )
    wanted = f"{name} v{version}" if version is not None else name
    raise DbtError(f"dbt model {wanted} is not in the dbt manifest")


def metric_definition(metric_id: str, name: str, version: int | None, manifest=None) -> dict[str, Any]:
    info = model(name, version, manifest)
    for metric in info.meta.get("metrics", []):
        if metric.get("id") == metric_id:
            return {"model": name, "model_version": version, "owner": info.meta.get("owner"), **metric}
    raise DbtError(f"metric {metric_id!r} is not defined in the meta of dbt model {name} v{version}")
