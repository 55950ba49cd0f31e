"""The S3 store: any S3-compatible endpoint through boto3.

Configured by `REPORTS_S3_ENDPOINT`, `REPORTS_S3_BUCKET`, `REPORTS_S3_PREFIX`; credentials come
from the usual AWS environment variables. Keys are `<prefix>/<tenant>/<template>/<period>/<run_id>/<file>`.
Publishing uploads every file under a staging prefix (`.../<period>/.staging-<run_id>/`; large
files as multipart uploads that are aborted on failure), copies them to their final keys with
`manifest.json` LAST, then deletes the staging keys. A failure removes everything it wrote: no
visible artifact, no orphan.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any, BinaryIO

from orchestration.artifacts.store import (
    MANIFEST,
    ArtifactNotFound,
    ArtifactStore,
    PublishResult,
    StorageError,
    manifest_bytes,
    sha256_file,
    staged_files,
)
from orchestration.dev import faults

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (all but the last)
MAX_PARTS = 10_000
MAX_COPY_OBJECT = 5 * 1024 ** 3  # larger objects are copied in parts


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
        files = staged_files(staging)
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
        # Published; leftover staging keys are invisible and `discard` removes them.
        with contextlib.suppress(BotoCoreError, ClientError):
            self._delete_prefix(stage)
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

        with contextlib.suppress(BotoCoreError, ClientError):  # _clean lists what is still open and aborts it again
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

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
