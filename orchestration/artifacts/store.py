"""The artifact store interface: a run's files appear all at once, with their manifest, or not at all.

A run is addressed by its run key `<tenant>/<template>/<period>/<run_id>`, and a run folder
without `manifest.json` does not exist for any reader (exists, list, open, presign). Two
implementations: `LocalStore` (artifacts/local_store.py, the embedded default) and `S3Store`
(artifacts/s3_store.py); artifacts/which_store.py chooses the configured one.
"""

from __future__ import annotations

import abc
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

MANIFEST = "manifest.json"
# The signed envelope of the manifest (orchestration/provenance/envelope.py): staged and published
# with the files, before the manifest; not in the manifest's own file list (it signs that list).
SIGNATURE = "manifest.sig.json"
MAX_PRESIGN_SECONDS = 60


class StorageError(RuntimeError):
    """The artifact store failed (or refused) a write or a read; a run ends as storage_failure."""


class ArtifactNotFound(StorageError):
    """No published run (no manifest) or no such file in it."""


# ------------------------------------------------------------------ helpers shared by both stores


def run_key(tenant_id: str, template_key: str, period: str, run_id: str) -> str:
    parts = (tenant_id, template_key, period, run_id)
    for part in parts:
        if not part or "/" in part or part.startswith(".") or part != part.strip():
            raise StorageError(f"invalid run key part {part!r}")
    return "/".join(parts)


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


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()


def check_presign_expiry(expires_in: int) -> int:
    if not isinstance(expires_in, int) or expires_in <= 0 or expires_in > MAX_PRESIGN_SECONDS:
        raise ValueError(f"a presigned URL lives at most {MAX_PRESIGN_SECONDS} seconds; refused {expires_in!r}")
    return expires_in


def staged_files(staging: Path) -> list[Path]:
    """The rendered files of a staging folder (hidden partials excluded), in name order."""
    return sorted(p for p in staging.iterdir() if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST)


@dataclass(frozen=True)
class PublishResult:
    location: str  # the local folder, or s3://bucket/<prefix>/<run key>
    manifest_sha256: str
    keys: dict[str, str]  # file name -> its storage key (S3 key or local path), manifest included


class ArtifactStore(abc.ABC):
    kind: str

    @abc.abstractmethod
    def describe(self) -> str: ...

    @abc.abstractmethod
    def location(self, key: str) -> str:
        """Where a run lives, as its run record's artifact_location names it."""

    @abc.abstractmethod
    def storage_key(self, key: str, name: str) -> str:
        """Where one file of a run lives (S3 key or local path)."""

    @abc.abstractmethod
    def publish(self, staging: Path, key: str, manifest: dict[str, Any]) -> PublishResult:
        """Make the files of `staging` the run `key`, manifest last, atomically."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """True when the run is published (its manifest is there)."""

    @abc.abstractmethod
    def list_runs(self, prefix: str = "") -> list[str]:
        """Run keys of published runs whose key starts with `prefix` (e.g. "acme/")."""

    @abc.abstractmethod
    def _open(self, key: str, name: str) -> BinaryIO: ...

    @abc.abstractmethod
    def _presign(self, key: str, name: str, expires_in: int) -> str: ...

    @abc.abstractmethod
    def delete(self, key: str) -> list[str]:
        """Remove a published run: it disappears at once (manifest first), then its bytes.
        Returns the storage keys removed."""

    @abc.abstractmethod
    def discard(self, key: str) -> None:
        """Remove whatever an unfinished publish of `key` left behind (staging, partial uploads)."""

    # --- reading, the same for both

    def read_manifest(self, key: str) -> dict[str, Any]:
        if not self.exists(key):
            raise ArtifactNotFound(f"no published run at {self.location(key)}")
        with self._open(key, MANIFEST) as fh:
            return json.loads(fh.read())

    def files(self, key: str) -> list[str]:
        """The file names of a published run (manifest.json and its signed envelope included)."""
        return sorted([f["name"] for f in self.read_manifest(key)["files"]] + [MANIFEST, SIGNATURE])

    def open(self, key: str, name: str) -> BinaryIO:
        """A published file as a stream of bytes (close it, or use `with`)."""
        self._check_name(key, name)
        return self._open(key, name)

    def open_unchecked(self, key: str, name: str) -> BinaryIO:
        """A stored file of a run by name, whether or not its manifest lists it: provenance
        verification reads what is there without trusting the manifest it is checking."""
        return self._open(key, name)

    def presign(self, key: str, name: str, expires_in: int = MAX_PRESIGN_SECONDS) -> str:
        """A GET URL for one published file, valid `expires_in` seconds (at most 60)."""
        check_presign_expiry(expires_in)
        self._check_name(key, name)
        return self._presign(key, name, expires_in)

    def verify(self, key: str) -> list[str]:
        """Problems with a published run: missing manifest, or files whose bytes differ from it."""
        if not self.exists(key):
            return [f"{self.location(key)}: no manifest"]
        problems = []
        for entry in self.read_manifest(key)["files"]:
            digest = hashlib.sha256()
            try:
                with self._open(key, entry["name"]) as fh:
                    for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                        digest.update(chunk)
            except (ArtifactNotFound, FileNotFoundError):
                problems.append(f"{self.storage_key(key, entry['name'])}: missing")
                continue
            if digest.hexdigest() != entry["sha256"]:
                problems.append(f"{self.storage_key(key, entry['name'])}: sha256 differs from the manifest")
        return problems

    def _check_name(self, key: str, name: str) -> None:
        if name not in self.files(key):
            raise ArtifactNotFound(f"{self.location(key)} has no file {name!r}")
