"""The checks of `nexus-reports provenance verify`, one result each.

Offline (only the files and a public key): the envelope's signature, that its payload is the
manifest's exact bytes, and every file's sha256 and size. Online, against the control schema:
that the template content the manifest names is the approved version's, that the Gate C approval
it names (a distributed run) is the one recorded, and that the audit log holds the run's publish
event, unaltered, naming this manifest. In the caller's transaction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from orchestration.access import audit
from orchestration.artifacts.store import MANIFEST, SIGNATURE, ArtifactNotFound, ArtifactStore, StorageError
from orchestration.catalog.definition_template import is_definition_key
from orchestration.catalog.templates import Template
from orchestration.delivery import approvals as distribution
from orchestration.governance import lifecycle
from orchestration.provenance import envelope
from orchestration.provenance.approval import gate_c_entry
from orchestration.provenance.keys import PublicKey

PUBLISH_ACTION = "report.exported"  # what runs/publish.py records when a run's files are published


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    @property
    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAILED'} {self.name}: {self.detail}"


@dataclass(frozen=True)
class RunFiles:
    """What verify reads of a published run: the manifest's exact bytes and the envelope's."""

    location: str
    manifest_bytes: bytes
    envelope_bytes: bytes | None

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_bytes)


def read_run(store: ArtifactStore, key: str) -> RunFiles:
    location = store.location(key)
    if not store.exists(key):
        raise ArtifactNotFound(f"no published run at {location} (no {MANIFEST})")
    manifest = _read(store, key, MANIFEST)
    try:
        signature = _read(store, key, SIGNATURE)
    except (ArtifactNotFound, FileNotFoundError):
        signature = None
    return RunFiles(location, manifest, signature)


def _read(store: ArtifactStore, key: str, name: str) -> bytes:
    # By storage key, not through open(): open() checks the name against the manifest's file list,
    # which a tampered manifest must not be trusted to hold.
    with store.open_unchecked(key, name) as fh:
        return fh.read()


def signature(run: RunFiles, keys: dict[str, PublicKey]) -> tuple[Check, envelope.Envelope | None]:
    if run.envelope_bytes is None:
        return Check("signature", False, f"{SIGNATURE} is missing: the run is not signed"), None
    try:
        parsed = envelope.parse(run.envelope_bytes)
        keyid = envelope.verify(parsed, keys)
    except envelope.EnvelopeError as exc:
        return Check("signature", False, f"{SIGNATURE}: {exc}"), None
    return Check("signature", True, f"{SIGNATURE} signed by key {keyid}"), parsed


def payload(run: RunFiles, parsed: envelope.Envelope) -> Check:
    digest = hashlib.sha256(run.manifest_bytes).hexdigest()
    if parsed.payload != run.manifest_bytes:
        signed = hashlib.sha256(parsed.payload).hexdigest()
        return Check("manifest", False, f"{MANIFEST} (sha256 {digest[:12]}) is not the signed manifest "
                                        f"(sha256 {signed[:12]}): it was changed after signing")
    try:
        files = run.manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return Check("manifest", False, f"{MANIFEST} is signed but unreadable: {exc}")
    return Check("manifest", True, f"{MANIFEST} is the signed payload (sha256 {digest[:12]}, {len(files)} files)")


def files(store: ArtifactStore, key: str, manifest: dict[str, Any]) -> list[Check]:
    checks = []
    for entry in manifest["files"]:
        name = f"file {entry['name']}"
        digest, size = hashlib.sha256(), 0
        try:
            with store.open_unchecked(key, entry["name"]) as fh:
                for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                    digest.update(chunk)
                    size += len(chunk)
        except (ArtifactNotFound, FileNotFoundError, StorageError) as exc:
            checks.append(Check(name, False, f"missing ({exc})"))
            continue
        if size != entry["bytes"] or digest.hexdigest() != entry["sha256"]:
            checks.append(Check(name, False, f"{size:,} bytes, sha256 {digest.hexdigest()[:12]}; the manifest says "
                                             f"{entry['bytes']:,} bytes, sha256 {entry['sha256'][:12]}"))
            continue
        checks.append(Check(name, True, f"sha256 {entry['sha256'][:12]}, {size:,} bytes"))
    return checks


def template(conn, manifest: dict[str, Any], kept: dict[str, Any] | None) -> Check:
    """The content the manifest names is the approved version's (for a definition run: the
    compiled template kept on its run record, `kept`)."""
    named = manifest["template"]
    label = f"{named['key']} v{named['version']}"
    if is_definition_key(named["key"]):
        if kept is None:
            return Check("template", False, f"{label}: the run record keeps no compiled template")
        actual, where = Template.model_validate(kept).content_hash, "the template kept on the run record"
    else:
        try:
            stored, row = lifecycle.load_version(conn, named["key"], named["version"])
        except lifecycle.GovernanceError as exc:
            return Check("template", False, f"{label}: {exc}")
        if row["approved_by"] is None:
            return Check("template", False, f"{label} is {row['state']} in the control schema, not approved")
        named_approver = (manifest.get("approval") or {}).get("approved_by")
        if named_approver is not None and named_approver != row["approved_by"]:
            return Check("template", False, f"{label}: the manifest names approver {named_approver}, the control "
                                            f"schema {row['approved_by']}")
        actual, where = stored.content_hash, f"the version {row['approved_by']} approved in the control schema"
        if row["content_hash"] != actual:
            return Check("template", False, f"{label}: the control schema's content hashes to {actual[:12]}, "
                                            f"not its recorded {row['content_hash'][:12]}: it was changed")
    if actual != named["content_hash"]:
        return Check("template", False, f"{label}: the manifest names content {named['content_hash'][:12]}, "
                                        f"{where} is {actual[:12]}")
    return Check("template", True, f"{label} content {actual[:12]} is {where}")


def gate_c(conn, manifest: dict[str, Any]) -> Check | None:
    """The Gate C approval the manifest names is the one in the control schema, field by field;
    None when the manifest names none (a run not distributed from a schedule)."""
    named = manifest.get("gate_c")
    if not named:
        return None
    if named.get("approval_id") is None:
        return Check("gate_c", True, f"names no distribution approval: {named.get('note', 'none recorded')}")
    label = f"distribution approval #{named['approval_id']} of schedule {named['schedule_id']}"
    row = distribution.approval_by_id(conn, named["approval_id"])
    if row is None:
        return Check("gate_c", False, f"{label} is not in the control schema")
    stored = gate_c_entry(row, row["schedule_id"])
    changed = [f"{field} {named.get(field)!r} in the manifest, {stored[field]!r} in the control schema"
               for field in stored if named.get(field) != stored[field]]
    if changed:
        return Check("gate_c", False, f"{label}: " + "; ".join(changed))
    return Check("gate_c", True, f"{label} by {stored['approved_by']} at {stored['approved_at']} covers "
                                 f"{', '.join(stored['recipients'])} over {', '.join(stored['channels'])}")


def publish_event(conn, run_id: str, manifest_bytes: bytes) -> Check:
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    found = audit.events(conn, PUBLISH_ACTION, run_id)
    if not found:
        return Check("audit", False, f"the audit log holds no {PUBLISH_ACTION} event for run {run_id}")
    event = found[-1]
    if not event.intact:
        return Check("audit", False, f"audit row {event.seq} ({PUBLISH_ACTION} of run {run_id}) was changed "
                                     "after it was written")
    if event.details.get("manifest_sha256") != digest:
        return Check("audit", False, f"audit row {event.seq} names manifest sha256 "
                                     f"{str(event.details.get('manifest_sha256'))[:12]}, not {digest[:12]}")
    return Check("audit", True, f"audit row {event.seq}: {PUBLISH_ACTION} by {event.actor} at "
                                f"{event.at.isoformat(timespec='seconds')}, manifest sha256 {digest[:12]}")
