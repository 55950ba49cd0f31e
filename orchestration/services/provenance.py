"""Provenance use cases: show or rotate the signing key, verify a published run, rerun one.

`verify` yields one check at a time and stops at the first failure: a verifier reads the lines
as they come and the exit status says whether the whole run holds. Without a connection it is
offline: only what the files and a public key can prove.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from orchestration.access import audit, policy
from orchestration.artifacts import which_store
from orchestration.artifacts.store import StorageError
from orchestration.errors import Conflict, Invalid, NotFound
from orchestration.governance import versions
from orchestration.provenance import keys, verify
from orchestration.provenance.verify import Check
from orchestration.runs import records, rerun, snapshot
from orchestration.settings import Settings, get_settings


@dataclass(frozen=True)
class KeyInfo:
    keyid: str
    pem: str
    created: bool = False
    previous_keyid: str | None = None


def ensure_key(settings: Settings | None = None) -> KeyInfo:
    key, created = keys.ensure_key(settings or get_settings())
    return KeyInfo(key.keyid, key.public.pem, created=created)


def rotate_key(settings: Settings | None = None) -> KeyInfo:
    new, old = keys.rotate(settings or get_settings())
    return KeyInfo(new.keyid, new.public.pem, created=True, previous_keyid=old.keyid if old else None)


def _looks_like_location(target: str) -> bool:
    return target.startswith("s3://") or "/" in target or Path(target).exists()


def _location(conn, target: str) -> str:
    if _looks_like_location(target):
        return target
    if conn is None:
        raise Invalid(f"{target!r} is a run id: offline verification needs the run's folder (PATH) or s3:// location")
    with conn:
        record = records.get_run(conn, target)
    if record is None:
        raise NotFound(f"no run {target}")
    if not record.artifact_location:
        raise NotFound(f"run {target} is {record.state}: nothing was published")
    return record.artifact_location


def _public_keys(key_file: Path | None, settings: Settings) -> dict[str, keys.PublicKey]:
    try:
        if key_file is not None:
            key = keys.load_public(key_file)
            return {key.keyid: key}
        return keys.keyring(settings)
    except keys.SigningKeyError as exc:
        raise Invalid(str(exc)) from exc


def verify_run(target: str, *, conn=None, key_file: Path | None = None,
               settings: Settings | None = None) -> Iterator[Check]:
    """The checks of one published run (RUN id, folder or s3:// location), up to the first failure.
    `conn` None: offline (signature, manifest, files)."""
    settings = settings or get_settings()
    location = _location(conn, target)
    try:
        store, key = which_store.for_location(location, settings)
        run = verify.read_run(store, key)
    except StorageError as exc:
        raise NotFound(str(exc)) from exc
    checks = _offline_checks(store, key, run, _public_keys(key_file, settings))
    for check in checks:
        yield check
        if not check.ok:
            return
    if conn is None:
        return
    with conn:
        yield from _online_checks(conn, run)


def _online_checks(conn, run: verify.RunFiles) -> Iterator[Check]:
    manifest = run.manifest
    record = records.get_run(conn, manifest["run_id"])
    kept = record.template if record else None
    checks = (lambda: verify.template(conn, manifest, kept), lambda: verify.gate_c(conn, manifest),
              lambda: verify.publish_event(conn, manifest["run_id"], run.manifest_bytes))
    for make in checks:  # each made only once the one before it passed
        check = make()
        if check is None:
            continue
        yield check
        if not check.ok:
            return


def _offline_checks(store, key: str, run: verify.RunFiles, public_keys) -> Iterator[Check]:
    check, parsed = verify.signature(run, public_keys)
    yield check
    if parsed is None:
        return
    check = verify.payload(run, parsed)
    yield check
    if not check.ok:
        return
    yield from verify.files(store, key, run.manifest)


def rerun_run(conn, run_id: str, *, actor: str, into: Path | None = None,
              settings: Settings | None = None) -> rerun.Rerun:
    """Render a published run's recorded request again (runs/rerun.py) and compare every file
    with the published one. `into`: an empty folder outside the artifact store that keeps the
    rerun's files (default: a temporary folder, removed). Audited as `provenance.rerun`."""
    settings = settings or get_settings()
    with conn:
        record = records.get_run(conn, run_id)
    if record is None:
        raise NotFound(f"no run {run_id}")
    target = f"rerun of run {run_id}"
    policy.authorize(conn, actor, "run", target=target, tenant_id=record.tenant_id, correlation_id=run_id)
    if record.state != "completed" or not record.artifact_location:
        raise Conflict(f"run {run_id} is {record.state}: only a completed, published run can be rerun")
    folder = _scratch(into, settings)
    try:
        with conn:
            template = versions.template_of_run(conn, record)
        store, key = which_store.for_location(record.artifact_location, settings)
        result = rerun.rerun(conn, record, template, store.read_manifest(key), folder)
    except (StorageError, snapshot.SnapshotError, psycopg2.Error, OSError) as exc:
        conn.rollback()
        audit.record_now(conn, actor=actor, action="provenance.rerun", target=target, outcome="failed",
                         tenant_id=record.tenant_id, correlation_id=run_id, details={"error": str(exc)})
        raise Conflict(f"run {run_id} could not be rendered again: {exc}") from exc
    finally:
        if into is None:
            shutil.rmtree(folder, ignore_errors=True)
    with conn:
        audit.record(conn, actor=actor, action="provenance.rerun", target=target,
                     outcome="succeeded" if result.reproduced else "failed", tenant_id=record.tenant_id,
                     correlation_id=run_id,
                     details={"source": result.source, "generated_at": result.generated_at.isoformat(),
                              "into": str(into) if into else None, "moved_watermarks": list(result.moved_watermarks),
                              "files": [{"name": f.name, "same": f.same, "published_sha256": f.published_sha256,
                                         "rerun_sha256": f.rerun_sha256} for f in result.files]})
    return result


def _scratch(into: Path | None, settings: Settings) -> Path:
    """Where the rerun writes: never the artifact store (a rerun never publishes over a run)."""
    if into is None:
        return Path(tempfile.mkdtemp(prefix="nexus-rerun-"))
    into = into.resolve()
    if into.is_relative_to(settings.artifacts_dir.resolve()):
        raise Invalid(f"{into} is inside the artifact store ({settings.artifacts_dir}): a rerun writes elsewhere")
    if into.exists() and (not into.is_dir() or any(into.iterdir())):
        raise Invalid(f"{into} is not an empty folder")
    into.mkdir(parents=True, exist_ok=True)
    return into
