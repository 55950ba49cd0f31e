"""The local artifact store: files appear all at once, with their manifest, or not at all.

A run renders into a hidden staging folder beside its final place; publishing writes the
manifest last, flushes everything to disk and renames the folder into place (one atomic
rename). Readers only ever see complete folders, and a folder without a manifest is not an
artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from . import faults

MANIFEST = "manifest.json"


class StorageError(RuntimeError):
    pass


def run_location(root: Path, tenant_id: str, template_key: str, period: str, run_id: str) -> Path:
    return root / tenant_id / template_key / period / run_id


def staging_location(final: Path) -> Path:
    return final.parent / f".staging-{final.name}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path, fmt: str, rows: int) -> dict[str, Any]:
    return {"name": path.name, "format": fmt, "bytes": path.stat().st_size, "sha256": sha256_file(path), "rows": rows}


def publish(staging: Path, final: Path, manifest: dict[str, Any]) -> str:
    """Write the manifest last and move the staging folder into place; returns the manifest's sha256."""
    if final.exists():
        raise StorageError(f"refusing to overwrite published artifact {final}")
    try:
        data = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
        tmp = staging / f".{MANIFEST}.partial"
        tmp.write_bytes(data)
        faults.hit("store")  # the store failing mid-publish (tests): staging holds a partial manifest
        for entry in staging.iterdir():
            _fsync(entry)
        tmp.rename(staging / MANIFEST)
        _fsync(staging)
        staging.rename(final)
        _fsync(final.parent)
    except OSError as exc:
        raise StorageError(f"publishing {final} failed: {exc}") from exc
    return hashlib.sha256(data).hexdigest()


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(final: Path) -> dict[str, Any]:
    return json.loads((final / MANIFEST).read_text())


def verify(final: Path) -> list[str]:
    """Problems with a published folder: missing manifest, or files whose bytes changed."""
    if not (final / MANIFEST).exists():
        return [f"{final}: no manifest"]
    problems = []
    for entry in read_manifest(final)["files"]:
        path = final / entry["name"]
        if not path.exists():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != entry["sha256"]:
            problems.append(f"{path}: sha256 differs from the manifest")
    return problems
