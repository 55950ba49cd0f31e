"""Signed manifests: a published run verifies; each kind of tampering is named by the check it
breaks; an auditor with only the files and the public key can verify; rotation keeps old runs
verifiable. The run is made in process (as tests/runs/test_engine.py does); each tampering test
works on a copy of its folder, so the published run itself stays intact."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import shutil
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from orchestration.artifacts.store import MANIFEST, SIGNATURE
from orchestration.catalog import templates
from orchestration.provenance import envelope, keys
from orchestration.runs import engine
from orchestration.runs.request import ReportRequest
from orchestration.settings import get_settings
from tests.helpers.cli import invoke as cli

from ..conftest import PERIOD, analyst

TEMPLATE = "incident_summary"


def make_run(tenant: str = "acme"):
    template = templates.load(TEMPLATE, 1)
    request = ReportRequest.for_period(template, tenant, PERIOD, requester=analyst(tenant), formats=("csv", "json"))
    return engine.run_report(template, request)


@pytest.fixture(scope="module")
def published(built):
    return make_run()


@pytest.fixture()
def copy(published, tmp_path) -> Path:
    """The run's folder copied to <tmp>/<tenant>/<template>/<period>/<run_id> (a run location)."""
    target = tmp_path.joinpath(*Path(published.location).parts[-4:])
    shutil.copytree(published.location, target)
    return target


def verify(target, *args: str):
    """(exit code, the check lines) of `nexus-reports provenance verify`."""
    result = cli("provenance", "verify", str(target), *args)
    lines = [line for line in result.stdout.splitlines() if line.startswith(("ok ", "FAILED "))]
    return result.exit_code, lines, result.stderr


def rewrite_envelope(folder: Path, change) -> None:
    data = json.loads((folder / SIGNATURE).read_bytes())
    change(data)
    (folder / SIGNATURE).write_text(json.dumps(data))


# ------------------------------------------------------------------ a published run


def test_a_published_run_is_signed_over_its_exact_manifest_bytes(published):
    folder = Path(published.location)
    manifest = (folder / MANIFEST).read_bytes()
    signed = json.loads((folder / SIGNATURE).read_bytes())
    assert signed["payloadType"] == "application/vnd.nexus-reports.manifest+json"
    assert base64.b64decode(signed["payload"]) == manifest
    [sig] = signed["signatures"]
    current = keys.current(get_settings())
    assert sig["keyid"] == current.keyid == hashlib.sha256(
        current.public.key.public_bytes_raw()).hexdigest()[:16]
    # Ed25519 over the DSSE pre-authentication encoding, recomputed here by hand
    kind = signed["payloadType"].encode()
    pae = b"DSSEv1 " + str(len(kind)).encode() + b" " + kind + b" " + str(len(manifest)).encode() + b" " + manifest
    Ed25519PublicKey.from_public_bytes(current.public.key.public_bytes_raw()).verify(base64.b64decode(sig["sig"]), pae)
    # the manifest's own file list is unchanged: the rendered files only
    assert SIGNATURE not in [f["name"] for f in json.loads(manifest)["files"]]


def test_the_private_key_is_readable_only_by_its_owner(published):
    path = keys.signing_dir(get_settings()) / keys.PRIVATE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_manifest_names_the_template_approval(published, conn):
    manifest = json.loads((Path(published.location) / MANIFEST).read_bytes())
    with conn, conn.cursor() as cur:
        cur.execute("select approved_by, approved_at, content_hash from control.template_versions "
                    "where template_key = %s and version = 1", (TEMPLATE,))
        approved_by, approved_at, content_hash = cur.fetchone()
    approval = manifest["approval"]
    assert approval["kind"] == "template_version"
    assert (approval["approved_by"], approval["approved_at"]) == (approved_by, approved_at.isoformat())
    assert approval["content_hash"] == content_hash == manifest["template"]["content_hash"]
    assert approval["gate_a"] == {"result": "passed", "checked_at": approved_at.isoformat()}


def test_verify_passes_every_check_by_run_id_and_by_path(published):
    for target in (published.run_id, published.location):
        code, lines, _ = verify(target)
        assert code == 0, lines
        names = [line.split(":")[0] for line in lines]
        files = [f"ok file {f['name']}" for f in published.manifest["files"]]
        assert names == ["ok signature", "ok manifest", *files, "ok template", "ok audit"]


def test_verify_offline_with_only_the_files_and_the_public_key(copy, tmp_path):
    pem = tmp_path / "nexus.pub"
    out = cli("provenance", "key")
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith(f"key id {keys.current(get_settings()).keyid}\n-----BEGIN PUBLIC KEY-----")
    pem.write_text(out.stdout)  # as an operator publishes it: the key id line, then the PEM
    code, lines, _ = verify(copy, "--offline", "--key", pem)
    assert code == 0, lines
    assert [line.split(":")[0] for line in lines][:2] == ["ok signature", "ok manifest"]
    assert not any(line.startswith(("ok template", "ok audit")) for line in lines)  # offline: no database
    # another key (not the signer's) does not verify it
    other = tmp_path / "other.pub"
    other.write_bytes(keys.public_pem(Ed25519PrivateKey.generate().public_key()))
    code, lines, err = verify(copy, "--offline", "--key", other)
    assert code == 1 and lines[-1].startswith("FAILED signature") and "not in the keyring" in lines[-1]
    assert "Traceback" not in err


# ------------------------------------------------------------------ tampering, each named


def test_a_changed_file_is_named(copy):
    csv = next(copy.glob("*.csv"))
    csv.write_bytes(csv.read_bytes().replace(b",", b";", 1))
    code, lines, err = verify(copy)
    assert code == 1
    assert lines[-1].startswith(f"FAILED file {csv.name}") and "the manifest says" in lines[-1]
    assert f"failed at file {csv.name}" in err


def test_a_changed_manifest_is_named(copy):
    manifest = json.loads((copy / MANIFEST).read_bytes())
    manifest["row_counts"] = {k: v + 1 for k, v in manifest["row_counts"].items()}
    (copy / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    code, lines, _ = verify(copy)
    assert code == 1 and lines[0].startswith("ok signature")
    assert lines[-1].startswith("FAILED manifest") and "changed after signing" in lines[-1]


def test_a_changed_envelope_is_named(copy):
    def swap_payload(data):  # a manifest and envelope replaced together, without the private key
        payload = json.loads(base64.b64decode(data["payload"]))
        payload["tenant_id"] = "globex"
        data["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()

    rewrite_envelope(copy, swap_payload)
    code, lines, _ = verify(copy)
    assert code == 1 and lines == [lines[-1]]
    assert lines[-1].startswith("FAILED signature") and "does not verify" in lines[-1]


def test_a_changed_key_id_is_named(copy):
    rewrite_envelope(copy, lambda data: data["signatures"][0].update(keyid="0" * 16))
    code, lines, _ = verify(copy)
    assert code == 1 and lines[-1].startswith("FAILED signature") and f"key id {'0' * 16} is not in the keyring" in lines[-1]


def test_a_missing_envelope_is_named(copy):
    (copy / SIGNATURE).unlink()
    code, lines, _ = verify(copy)
    assert code == 1 and lines == [f"FAILED signature: {SIGNATURE} is missing: the run is not signed"]


def test_changed_template_content_in_the_control_schema_is_named(published, conn):
    with conn, conn.cursor() as cur:
        cur.execute("select content from control.template_versions where template_key = %s and version = 1", (TEMPLATE,))
        original = cur.fetchone()[0]
        changed = {**original, "title": original["title"] + " (edited)"}
        cur.execute("update control.template_versions set content = %s where template_key = %s and version = 1",
                    (json.dumps(changed), TEMPLATE))
    try:
        code, lines, _ = verify(published.run_id)
    finally:
        with conn, conn.cursor() as cur:
            cur.execute("update control.template_versions set content = %s where template_key = %s and version = 1",
                        (json.dumps(original), TEMPLATE))
    assert code == 1 and lines[-1].startswith(f"FAILED template: {TEMPLATE} v1") and "it was changed" in lines[-1]
    assert verify(published.run_id)[0] == 0


def test_a_changed_approver_in_the_control_schema_is_named(published, conn):
    approver = published.manifest["approval"]["approved_by"]
    with conn, conn.cursor() as cur:
        cur.execute("update control.template_versions set approved_by = 'someone@else.example' "
                    "where template_key = %s and version = 1", (TEMPLATE,))
    try:
        code, lines, _ = verify(published.run_id)
    finally:
        with conn, conn.cursor() as cur:
            cur.execute("update control.template_versions set approved_by = %s where template_key = %s and version = 1",
                        (approver, TEMPLATE))
    assert code == 1 and lines[-1] == (f"FAILED template: {TEMPLATE} v1: the manifest names approver {approver}, "
                                       "the control schema someone@else.example")


@pytest.fixture()
def publish_row(published, conn):
    """The run's publish audit row; restored after the test (the audit log is append-only)."""
    with conn, conn.cursor() as cur:
        cur.execute("select seq, details from control.audit_log where action = 'report.exported' "
                    "and correlation_id = %s", (published.run_id,))
        seq, details = cur.fetchone()
    yield seq
    with conn, conn.cursor() as cur:
        cur.execute("alter table control.audit_log disable trigger user")
        cur.execute("update control.audit_log set details = %s where seq = %s", (json.dumps(details), seq))
        cur.execute("alter table control.audit_log enable trigger user")


def test_a_changed_audit_row_is_named(published, conn, publish_row):
    with conn, conn.cursor() as cur:
        cur.execute("alter table control.audit_log disable trigger user")
        cur.execute("update control.audit_log set details = details || '{\"store\": \"elsewhere\"}' where seq = %s",
                    (publish_row,))
        cur.execute("alter table control.audit_log enable trigger user")
    code, lines, _ = verify(published.run_id)
    assert code == 1
    assert lines[-1] == (f"FAILED audit: audit row {publish_row} (report.exported of run {published.run_id}) "
                         "was changed after it was written")


def test_an_unknown_run_is_one_line_not_a_traceback(built):
    result = cli("provenance", "verify", "no-such-run")
    assert result.exit_code == 1 and "no run no-such-run" in result.stderr and "Traceback" not in result.output


# ------------------------------------------------------------------ rotation


def test_a_rotated_key_keeps_old_runs_verifiable(published, built):
    before = keys.current(get_settings()).keyid
    result = cli("provenance", "key", "--rotate")
    assert result.exit_code == 0, result.output
    after = keys.current(get_settings()).keyid
    assert after != before and set(keys.keyring(get_settings())) >= {before, after}
    assert f"key id {after}" in result.stdout
    assert verify(published.run_id)[0] == 0  # signed with the old key, still verifiable
    fresh = make_run(tenant="globex")
    signed = json.loads((Path(fresh.location) / SIGNATURE).read_bytes())
    assert [s["keyid"] for s in signed["signatures"]] == [after]
    assert verify(fresh.run_id)[0] == 0
    assert envelope.parse((Path(fresh.location) / SIGNATURE).read_bytes()).payload == (
        Path(fresh.location) / MANIFEST).read_bytes()


def test_init_keeps_the_signing_key_it_finds(built):
    before = keys.current(get_settings()).keyid
    result = cli("init")
    assert result.exit_code == 0, result.output
    assert f"signing key {before} present" in result.stdout
    assert keys.current(get_settings()).keyid == before


def test_a_new_deployment_gets_a_key_with_a_private_part_only_its_owner_reads(tmp_path):
    settings = dataclasses.replace(get_settings(), home=tmp_path)
    key, created = keys.ensure_key(settings)
    again, created_again = keys.ensure_key(settings)
    assert created and not created_again and again.keyid == key.keyid == keys.current(settings).keyid
    assert stat.S_IMODE((keys.signing_dir(settings) / keys.PRIVATE).stat().st_mode) == 0o600
    assert set(keys.keyring(settings)) == {key.keyid}
