"""Provenance use cases: show or rotate the signing key, verify a published run.

`verify` yields one check at a time and stops at the first failure: a verifier reads the lines
as they come and the exit status says whether the whole run holds. Without a connection it is
offline: only what the files and a public key can prove.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestration.artifacts import which_store
from orchestration.artifacts.store import StorageError
from orchestration.errors import Invalid, NotFound
from orchestration.provenance import keys, verify
from orchestration.provenance.verify import Check
from orchestration.runs import records
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
    manifest = run.manifest
    with conn:
        record = records.get_run(conn, manifest["run_id"])
        kept = record.template if record else None
        for check in (verify.template(conn, manifest, kept), verify.publish_event(conn, manifest["run_id"], run.manifest_bytes)):
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
