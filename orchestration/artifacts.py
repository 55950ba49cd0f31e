"""Local-folder helpers of the artifact store, kept for their callers: the store itself
(local folder and S3, one interface) is orchestration/storage.py.

`publish(staging, final, manifest)` publishes a staging folder as `final` through the local
store: the manifest written last, one atomic rename.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .storage import (
    MANIFEST,
    ArtifactNotFound,
    LocalStore,
    StorageError,
    file_entry,
    run_location,
    sha256_file,
    staging_location,
)

__all__ = ["MANIFEST", "ArtifactNotFound", "StorageError", "discard", "file_entry", "publish", "read_manifest",
           "run_location", "sha256_file", "staging_location", "verify"]


def publish(staging: Path, final: Path, manifest: dict[str, Any]) -> str:
    """Write the manifest last and move the staging folder into place; returns the manifest's sha256."""
    return LocalStore(final.parent).publish(staging, final.name, manifest).manifest_sha256


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def read_manifest(final: Path) -> dict[str, Any]:
    return LocalStore(final.parent).read_manifest(final.name)


def verify(final: Path) -> list[str]:
    """Problems with a published folder: missing manifest, or files whose bytes changed."""
    return LocalStore(final.parent).verify(final.name)
