"""The artifact store: a run's files appear all at once, with their manifest, or not at all.

One interface, two implementations:

- `LocalStore`, the embedded default: `$NEXUS_HOME/artifacts/<tenant>/<template>/<period>/<run_id>/`.
  A run renders into a hidden staging folder beside its final place; publishing writes the
  manifest last, flushes to disk and renames the folder into place (one atomic rename).
- `S3Store`, any S3-compatible endpoint through boto3 (`REPORTS_S3_ENDPOINT`, `REPORTS_S3_BUCKET`,
  `REPORTS_S3_PREFIX`; credentials from the usual AWS environment variables). Keys are
  `<prefix>/<tenant>/<template>/<period>/<run_id>/<file>`. Publishing uploads every file under
  a staging prefix (`.../<period>/.staging-<run_id>/`; large files as multipart uploads that are
  aborted on failure), copies them to their final keys with `manifest.json` LAST, then deletes
  the staging keys. A failure removes everything it wrote: no visible artifact, no orphan.

In both, a run is addressed by its run key `<tenant>/<template>/<period>/<run_id>`, and a run
folder without `manifest.json` does not exist for any reader (exists, list, open, presign).
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from orchestration.dev import faults

MANIFEST = "manifest.json"
MAX_PRESIGN_SECONDS = 60
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (all but the last)
MAX_PARTS = 10_000
MAX_COPY_OBJECT = 5 * 1024 ** 3  # larger objects are copied in parts


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


def _staged_files(staging: Path) -> list[Path]:
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
        """The file names of a published run (manifest.json included)."""
        return sorted([f["name"] for f in self.read_manifest(key)["files"]] + [MANIFEST])

    def open(self, key: str, name: str) -> BinaryIO:
        """A published file as a stream of bytes (close it, or use `with`)."""
        self._check_name(key, name)
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


# ------------------------------------------------------------------ the local folder


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
        keys = {p.name: str(final / p.name) for p in _staged_files(final)}
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


# ------------------------------------------------------------------ S3


class S3Store(ArtifactStore):
    kind = "s3"

    def __init__(self, bucket: str, prefix: str = "", *, endpoint: str | None = None,
                 multipart_threshold: int = 8 * 1024 * 1024, part_size: int | None = None, client=None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        self.multipart_threshold = max(int(multipart_threshold), 1)
        self.part_size = max(part_size or multipart_threshold, MIN_PART_SIZE)
        self.client = client or _s3_client(endpoint)

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"S3 s3://{self.bucket}/{self.prefix + '/' if self.prefix else ''}{where}"

    # --- keys

    def _key(self, key: str, name: str = "") -> str:
        return "/".join(part for part in (self.prefix, key, name) if part)

    def _staging(self, key: str) -> str:
        parent, _, run_id = key.rpartition("/")
        return self._key(parent, f".staging-{run_id}") + "/"

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def storage_key(self, key: str, name: str) -> str:
        return self._key(key, name)

    # --- bucket

    def ensure_bucket(self) -> bool:
        """Create the bucket when it is missing; True when it was created."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return False
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise StorageError(f"bucket {self.bucket}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"bucket {self.bucket}: {exc}") from exc
        region = self.client.meta.region_name
        try:
            if region and region != "us-east-1":
                self.client.create_bucket(Bucket=self.bucket,
                                          CreateBucketConfiguration={"LocationConstraint": region})
            else:
                self.client.create_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"creating bucket {self.bucket} failed: {exc}") from exc
        return True

    # --- publish

    def publish(self, staging: Path, key: str, manifest: dict[str, Any]) -> PublishResult:
        from botocore.exceptions import BotoCoreError, ClientError

        location = self.location(key)
        if self.exists(key):
            raise StorageError(f"refusing to overwrite published artifact {location}")
        stage = self._staging(key)
        data = manifest_bytes(manifest)
        files = _staged_files(staging)
        finals: list[str] = []
        try:
            for path in files:
                self._upload(path, stage + path.name)
            self.client.put_object(Bucket=self.bucket, Key=stage + MANIFEST, Body=data,
                                   ContentType="application/json",
                                   Metadata={"sha256": hashlib.sha256(data).hexdigest()})
            faults.hit("store")  # the store failing mid-publish (tests): everything is staged, nothing final
            for path in files:  # the files first, the manifest last: only then does the run exist
                finals.append(self._key(key, path.name))
                self._copy(stage + path.name, finals[-1], path.stat().st_size)
                faults.hit("store_finalize")
            finals.append(self._key(key, MANIFEST))
            self._copy(stage + MANIFEST, finals[-1], len(data))
        except BaseException as exc:
            self._clean(stage, finals)
            if isinstance(exc, (BotoCoreError, ClientError, OSError)):
                raise StorageError(f"publishing {location} failed: {_describe_error(exc)}") from exc
            raise
        try:
            self._delete_prefix(stage)
        except (BotoCoreError, ClientError):
            pass  # published; leftover staging keys are invisible and `discard` removes them
        keys = {path.name: self._key(key, path.name) for path in files}
        keys[MANIFEST] = self._key(key, MANIFEST)
        return PublishResult(location, hashlib.sha256(data).hexdigest(), keys)

    def _upload(self, path: Path, key: str) -> None:
        size = path.stat().st_size
        metadata = {"sha256": sha256_file(path)}
        with path.open("rb") as fh:
            if size < self.multipart_threshold:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=fh, Metadata=metadata)
                return
            part_size = max(self.part_size, -(-size // MAX_PARTS))
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, Metadata=metadata)["UploadId"]
            try:
                parts = []
                for number in range(1, max(-(-size // part_size), 1) + 1):
                    chunk = fh.read(part_size)
                    etag = self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                   PartNumber=number, Body=chunk)["ETag"]
                    parts.append({"PartNumber": number, "ETag": etag})
                    faults.hit("store_upload")  # a failure between parts (tests)
                self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                      MultipartUpload={"Parts": parts})
            except BaseException:
                self._abort(key, upload_id)
                raise

    def _copy(self, source: str, target: str, size: int) -> None:
        copy_source = {"Bucket": self.bucket, "Key": source}
        if size <= MAX_COPY_OBJECT:
            self.client.copy_object(Bucket=self.bucket, Key=target, CopySource=copy_source, MetadataDirective="COPY")
        else:
            self.client.copy(copy_source, self.bucket, target)  # multipart copy (s3transfer)

    def _abort(self, key: str, upload_id: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (BotoCoreError, ClientError):
            pass  # _clean lists what is still open and aborts it again

    def _clean(self, stage: str, finals: list[str]) -> None:
        """After a failed publish: no final key, no staging key, no open multipart upload."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if finals:
                self._delete_keys(list(reversed(finals)))  # the manifest (if copied) first
            self._abort_uploads(stage)
            self._delete_prefix(stage)
        except (BotoCoreError, ClientError):
            pass  # the endpoint is down: `discard` (run by the reaper/abandon) retries

    def _abort_uploads(self, prefix: str) -> None:
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])

    def _list(self, prefix: str) -> list[str]:
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            answer = self.client.delete_objects(Bucket=self.bucket,
                                                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise StorageError(f"deleting {first.get('Key')} failed: {first.get('Code')} {first.get('Message')}")

    def _delete_prefix(self, prefix: str) -> list[str]:
        keys = self._list(prefix)
        if keys:
            self._delete_keys(keys)
        return keys

    # --- reading

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key, MANIFEST))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"{self.location(key)}: {_describe_error(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{self.location(key)}: {exc}") from exc

    def list_runs(self, prefix: str = "") -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        root = self.prefix + "/" if self.prefix else ""
        try:
            keys = self._list(root + prefix)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"listing s3://{self.bucket}/{root}{prefix}: {exc}") from exc
        runs = []
        for full in keys:
            parts = full[len(root):].split("/")
            if len(parts) == 5 and parts[-1] == MANIFEST and not any(p.startswith(".") for p in parts[:4]):
                runs.append("/".join(parts[:4]))
        return sorted(runs)

    def _open(self, key: str, name: str) -> BinaryIO:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key, name))["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise ArtifactNotFound(f"{self.location(key)}/{name}: not found") from exc
            raise StorageError(f"{self.location(key)}/{name}: {_describe_error(exc)}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{self.location(key)}/{name}: {exc}") from exc

    def _presign(self, key: str, name: str, expires_in: int) -> str:
        return self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": self._key(key, name)},
                                                  ExpiresIn=expires_in)

    # --- removal

    def delete(self, key: str) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            manifest = self._key(key, MANIFEST)
            keys = self._list(self._key(key) + "/")
            if manifest in keys:
                self._delete_keys([manifest])  # the run disappears for every reader at once
            rest = [k for k in keys if k != manifest]
            if rest:
                self._delete_keys(rest)
            self._abort_uploads(self._staging(key))
            self._delete_prefix(self._staging(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"deleting {self.location(key)} failed: {_describe_error(exc)}") from exc
        return sorted(keys)

    def discard(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._abort_uploads(self._staging(key))
            self._delete_prefix(self._staging(key))
            if not self.exists(key):  # a publish that died between its copies: never visible, now gone
                self._delete_prefix(self._key(key) + "/")
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cleaning up {self.location(key)} failed: {_describe_error(exc)}") from exc


def _describe_error(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        error = response["Error"]
        return f"{error.get('Code')}: {error.get('Message') or exc}"
    return str(exc)


def _s3_client(endpoint: str | None):
    import boto3
    from botocore.config import Config

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    config = Config(
        signature_version="s3v4",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        # An S3-compatible server on an address (MinIO, moto, Ceph) answers path-style requests.
        s3={"addressing_style": "path" if endpoint else "auto"},
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region, config=config)


# ------------------------------------------------------------------ choosing a store


def get_store(settings=None) -> ArtifactStore:
    """The configured store: S3 when REPORTS_S3_BUCKET is set, else the local folder."""
    from orchestration.settings import get_settings

    settings = settings or get_settings()
    if settings.s3_bucket:
        return S3Store(settings.s3_bucket, settings.s3_prefix, endpoint=settings.s3_endpoint,
                       multipart_threshold=settings.s3_multipart_threshold)
    if settings.s3_endpoint:
        raise StorageError("REPORTS_S3_ENDPOINT is set but REPORTS_S3_BUCKET is not: name the bucket to publish to")
    return LocalStore(settings.artifacts_dir)


def for_location(location: str, settings=None) -> tuple[ArtifactStore, str]:
    """The store and run key of a recorded artifact_location (a local folder or s3://bucket/...),
    whatever store is configured now: runs published before a switch stay reachable."""
    from orchestration.settings import get_settings

    if location.startswith("s3://"):
        settings = settings or get_settings()
        bucket, _, path = location[len("s3://"):].partition("/")
        parts = path.strip("/").split("/")
        if not bucket or len(parts) < 4:
            raise StorageError(f"not a run location: {location}")
        return (S3Store(bucket, "/".join(parts[:-4]), endpoint=settings.s3_endpoint,
                        multipart_threshold=settings.s3_multipart_threshold), "/".join(parts[-4:]))
    path = Path(location)
    if len(path.parts) < 5:
        raise StorageError(f"not a run location: {location}")
    return LocalStore(path.parents[3]), "/".join(path.parts[-4:])
