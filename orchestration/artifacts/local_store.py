"""The local folder store, the embedded default.

`$NEXUS_HOME/artifacts/<tenant>/<template>/<period>/<run_id>/`. A run renders into a hidden
staging folder beside its final place; publishing writes the manifest last, flushes to disk and
renames the folder into place (one atomic rename).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, BinaryIO

from orchestration.artifacts.store import (
    MANIFEST,
    ArtifactNotFound,
    ArtifactStore,
    PublishResult,
    StorageError,
    manifest_bytes,
    staged_files,
    staging_location,
)
from orchestration.dev import faults


class LocalStore(ArtifactStore):
    kind = "local"

    def __init__(self, root: Path):
        self.root = Path(root)

    def describe(self) -> str:
        return f"local folder {self.root}"

    def _final(self, key: str) -> Path:
        return self.root / key

    def location(self, key: str) -> str:
        return str(self._final(key))

    def storage_key(self, key: str, name: str) -> str:
        return str(self._final(key) / name)

    def publish(self, staging: Path, key: str, manifest: dict[str, Any]) -> PublishResult:
        final = self._final(key)
        if final.exists():
            raise StorageError(f"refusing to overwrite published artifact {final}")
        try:
            data = manifest_bytes(manifest)
            tmp = staging / f".{MANIFEST}.partial"
            tmp.write_bytes(data)
            faults.hit("store")  # the store failing mid-publish (tests): staging holds a partial manifest
            for entry in staging.iterdir():
                _fsync(entry)
            tmp.rename(staging / MANIFEST)
            _fsync(staging)
            final.parent.mkdir(parents=True, exist_ok=True)
            staging.rename(final)
            _fsync(final.parent)
        except OSError as exc:
            raise StorageError(f"publishing {final} failed: {exc}") from exc
        keys = {p.name: str(final / p.name) for p in staged_files(final)}
        keys[MANIFEST] = str(final / MANIFEST)
        return PublishResult(str(final), hashlib.sha256(data).hexdigest(), keys)

    def exists(self, key: str) -> bool:
        return (self._final(key) / MANIFEST).is_file()

    def list_runs(self, prefix: str = "") -> list[str]:
        if not self.root.exists():
            return []
        keys = []
        for manifest in self.root.glob(f"*/*/*/*/{MANIFEST}"):
            key = manifest.parent.relative_to(self.root).as_posix()
            if key.startswith(prefix) and not any(part.startswith(".") for part in key.split("/")):
                keys.append(key)
        return sorted(keys)

    def _open(self, key: str, name: str) -> BinaryIO:
        try:
            return (self._final(key) / name).open("rb")
        except FileNotFoundError as exc:
            raise ArtifactNotFound(f"{self._final(key) / name}: not found") from exc

    def _presign(self, key: str, name: str, expires_in: int) -> str:
        raise StorageError("the local artifact store has no URLs: files are served by the download service")

    def delete(self, key: str) -> list[str]:
        final = self._final(key)
        if not final.exists():
            return []
        removed = sorted(str(p) for p in final.iterdir())
        doomed = final.parent / f".expired-{final.name}"
        try:
            final.rename(doomed)  # gone from view at once; the bytes go next
            shutil.rmtree(doomed)
        except OSError as exc:
            raise StorageError(f"deleting {final} failed: {exc}") from exc
        return removed

    def discard(self, key: str) -> None:
        final = self._final(key)
        shutil.rmtree(staging_location(final), ignore_errors=True)
        shutil.rmtree(final.parent / f".expired-{final.name}", ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
