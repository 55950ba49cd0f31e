"""Reading the file a link points at: through the run's manifest, from its artifact store."""

from __future__ import annotations

from collections.abc import Iterator

from orchestration.runs import records

VARIANTS = ("internal", "external")  # external: the redacted variant, where the template's policy makes one
CHUNK = 64 * 1024


def published_file(conn, run_id: str, variant: str, fmt: str):
    """(store, run key, manifest entry) of one published file of a run; FileNotFoundError if none."""
    from orchestration.artifacts import which_store
    from orchestration.artifacts.store import StorageError

    if variant not in VARIANTS:
        raise FileNotFoundError(f"variant {variant!r} is not published")
    run = records.get_run(conn, run_id)
    if run is None or not run.artifact_location:
        raise FileNotFoundError(f"run {run_id} has no published artifacts")
    try:
        store, key = which_store.for_location(run.artifact_location)
        manifest = store.read_manifest(key)
    except StorageError as exc:
        raise FileNotFoundError(f"run {run_id}: no readable manifest: {exc}") from exc
    entries = [f for f in manifest.get("files", [])
               if f.get("format") == fmt and f.get("variant", "internal") == variant]
    if len(entries) != 1:
        raise FileNotFoundError(f"run {run_id} has no {variant} {fmt} file")
    return store, key, entries[0]


def open_artifact(conn, run_id: str, variant: str, fmt: str) -> tuple[str, int, Iterator[bytes]]:
    """(file name, size in bytes, iterator of its bytes) of one published file of a run, read
    from the run's artifact store (local folder or S3) through its manifest. The bytes are
    streamed through this service rather than redirected to a presigned URL, so expiry and
    revocation are enforced at the one place that checks them. Raises FileNotFoundError when
    the artifact is gone."""
    from orchestration.artifacts.store import StorageError

    store, key, entry = published_file(conn, run_id, variant, fmt)
    try:
        fh = store.open(key, entry["name"])  # opened now: a missing file is noticed before any response
    except StorageError as exc:  # includes a name pointing outside the run's folder
        raise FileNotFoundError(f"run {run_id}: {entry['name']}: {exc}") from exc

    def chunks() -> Iterator[bytes]:
        with fh:
            while block := fh.read(CHUNK):
                yield block

    return entry["name"], entry["bytes"], chunks()
