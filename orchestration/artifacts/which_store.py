"""Which artifact store: the configured one, or the one a recorded location names.

The interface and its helpers are in artifacts/store.py, the stores in artifacts/local_store.py
and artifacts/s3_store.py.
"""

from __future__ import annotations

from pathlib import Path

from orchestration.artifacts.local_store import LocalStore
from orchestration.artifacts.s3_store import S3Store
from orchestration.artifacts.store import ArtifactStore, StorageError


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
