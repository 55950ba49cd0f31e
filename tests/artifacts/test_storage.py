"""The artifact store: local folder and S3 (moto in server mode, over HTTP on loopback).

A run published to S3 has exactly its files and manifest under tenant-prefixed keys, copied
from staging with the manifest last; a failure anywhere in the publish leaves no final key, no
staging key and no open multipart upload, and ends the run as storage_failure. The artifact
index is written with the run; retention purges through either store, skips legal holds and
audits every purge.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import urllib.error
import urllib.request

import pytest

from orchestration.access import policy
from orchestration.artifacts import index as artifact_index
from orchestration.artifacts import local_store, retention, s3_store, which_store
from orchestration.artifacts.store import ArtifactNotFound, StorageError, file_entry, staging_location
from orchestration.catalog import templates
from orchestration.runs import engine, failures, records
from orchestration.runs.request import ReportRequest
from orchestration.services import artifacts as artifact_service
from orchestration.services import provenance
from orchestration.settings import get_settings
from tests.helpers.audit import audit_rows_of_run as audit_rows
from tests.helpers.cli import invoke

from ..conftest import PERIOD

BUCKET = "nexus-test-artifacts"
PREFIX = "reports"


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory):
    os.environ["MOTO_RECORDER_FILEPATH"] = str(tmp_path_factory.mktemp("moto") / "recording.jsonl")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def s3(moto_endpoint, monkeypatch):
    """The S3 store configured through the environment, for this test only; plus a raw client."""
    for name, value in {"REPORTS_S3_ENDPOINT": moto_endpoint, "REPORTS_S3_BUCKET": BUCKET,
                        "REPORTS_S3_PREFIX": PREFIX, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                        # report files are small: make anything above 1 KiB a multipart upload
                        "REPORTS_S3_MULTIPART_THRESHOLD": "1024"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    store = which_store.get_store()
    assert isinstance(store, s3_store.S3Store)
    store.ensure_bucket()
    return store


@pytest.fixture()
def local(monkeypatch):
    for name in ("REPORTS_S3_ENDPOINT", "REPORTS_S3_BUCKET", "REPORTS_S3_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    store = which_store.get_store()
    assert isinstance(store, local_store.LocalStore)
    return store


class Recorder:
    """moto's request recorder: the HTTP requests the server received, in order."""

    def __init__(self, endpoint):
        self.endpoint = endpoint

    def _call(self, what):
        with urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/recorder/{what}",
                                                           method="POST" if what != "download-recording" else "GET")) as r:
            return r.read().decode()

    def start(self):
        self._call("reset-recording")
        self._call("start-recording")

    def stop(self) -> list[dict]:
        self._call("stop-recording")
        return [json.loads(line) for line in self._call("download-recording").splitlines() if line.strip()]


def all_keys(store, prefix="") -> list[str]:
    return sorted(store._list(prefix))


def open_uploads(store) -> list[dict]:
    return store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])


def run(key="incident_summary", tenant="acme", requester=None, **kwargs):
    template = templates.load(key, 1)
    request = ReportRequest.for_period(template, tenant, PERIOD, requester=requester or f"analyst@{tenant}.example",
                                       **kwargs)
    return template, engine.run_report(template, request, retries=False)


def index_rows(conn, run_id):
    with conn, conn.cursor() as cur:
        cur.execute("select * from control.artifacts where run_id = %s order by format", (run_id,))
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# ------------------------------------------------------------------ S3: a full run


def test_a_report_run_publishes_to_s3_manifest_last(built, conn, s3, moto_endpoint):
    recorder = Recorder(moto_endpoint)
    recorder.start()
    template, pub = run()
    requests = recorder.stop()

    key = f"acme/incident_summary/{PERIOD}/{pub.run_id}"
    run_prefix = f"{PREFIX}/{key}/"
    assert pub.store == "s3" and pub.key == key
    assert pub.location == f"s3://{BUCKET}/{PREFIX}/{key}"
    assert records.get_run(conn, pub.run_id).artifact_location == pub.location

    # exactly the rendered files and the manifest, nothing staged left, no upload open, nothing local
    names = sorted(f["name"] for f in pub.manifest["files"])
    assert len(names) == 4
    assert all_keys(s3, run_prefix) == sorted(run_prefix + n for n in names + ["manifest.json", "manifest.sig.json"])
    assert [k for k in all_keys(s3, f"{PREFIX}/acme/incident_summary/{PERIOD}/") if ".staging-" in k] == []
    assert open_uploads(s3) == []
    local = get_settings().artifacts_dir / key
    assert not local.exists() and not staging_location(local).exists()

    # the stored manifest is the run's, and every object's bytes match it
    stored = json.loads(s3.client.get_object(Bucket=BUCKET, Key=run_prefix + "manifest.json")["Body"].read())
    assert stored == json.loads(json.dumps(pub.manifest, default=str))
    for entry in stored["files"]:
        body = s3.client.get_object(Bucket=BUCKET, Key=run_prefix + entry["name"])["Body"].read()
        assert len(body) == entry["bytes"] > 0
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
    assert s3.verify(key) == []
    # the signed envelope verifies from the bucket alone, as an auditor would check it
    checks = list(provenance.verify_run(pub.location))
    assert [c.ok for c in checks] == [True] * (2 + len(names)) and checks[0].name == "signature"

    # the order on the wire: every final key is a server-side copy from staging, the manifest last,
    # and staging is deleted only after that; big files went up as multipart uploads
    copies = [r["url"].split("?")[0].split(f"/{BUCKET}/", 1)[1] for r in requests
              if r["method"] == "PUT" and any(h.lower() == "x-amz-copy-source" for h in r["headers"])]
    assert sorted(copies) == sorted(run_prefix + n for n in names + ["manifest.json", "manifest.sig.json"])
    assert copies[-1] == run_prefix + "manifest.json"  # after the signed envelope: a visible run is a signed one
    direct_puts = [r for r in requests if r["method"] == "PUT" and run_prefix in r["url"]
                   and not any(h.lower() == "x-amz-copy-source" for h in r["headers"])]
    assert direct_puts == []
    order = [(r["method"], r["url"]) for r in requests]
    manifest_copy = next(i for i, (m, u) in enumerate(order)
                         if m == "PUT" and u.split("?")[0].endswith(run_prefix + "manifest.json"))
    deletes = [i for i, (m, u) in enumerate(order) if m == "POST" and "delete" in u.split("?")[-1]]
    assert deletes and min(deletes) > manifest_copy
    assert any(m == "POST" and "uploads" in u.split("?")[-1] for m, u in order)  # CreateMultipartUpload

    # the index rows, written with the run
    record = records.get_run(conn, pub.run_id)
    rows = index_rows(conn, pub.run_id)
    assert [(r["format"], r["store"], r["storage_key"], r["bytes"], r["sha256"]) for r in rows] == sorted(
        (f["format"], "s3", run_prefix + f["name"], f["bytes"], f["sha256"]) for f in stored["files"])
    assert {(r["variant"], r["sensitivity"], r["legal_hold"], r["deleted_at"]) for r in rows} == {
        ("internal", "internal", False, None)}
    assert {r["retention_until"] for r in rows} == {record.published_at + dt.timedelta(days=template.retention_days)}

    # reading back: a stream of bytes, and a presigned GET (at most 60 s) over real HTTP
    csv_name = f"acme_incident_summary_{PERIOD}_internal_summary_by_severity_INTERNAL.csv"  # named by the run
    with s3.open(key, csv_name) as fh:
        streamed = fh.read()
    assert hashlib.sha256(streamed).hexdigest() == next(f["sha256"] for f in stored["files"] if f["name"] == csv_name)
    with urllib.request.urlopen(s3.presign(key, csv_name, expires_in=60)) as response:
        assert response.read() == streamed
    for too_long in (61, 3600, 0, -5):
        with pytest.raises(ValueError, match="at most 60 seconds"):
            s3.presign(key, csv_name, expires_in=too_long)
    with pytest.raises(ArtifactNotFound):
        s3.open(key, "../../other.csv")
    assert key in s3.list_runs("acme/") and key not in s3.list_runs("globex/")


# ------------------------------------------------------------------ S3: atomicity


@pytest.mark.parametrize("fault", ["store_upload:storage", "store:storage", "store_finalize:storage"],
                         ids=["mid-multipart-upload", "after-staging", "between-final-copies"])
def test_a_failure_mid_publish_leaves_nothing_on_s3(built, conn, s3, inject, fault):
    inject(fault)
    with pytest.raises(failures.RunFailed) as failed:
        run(tenant="globex", formats=("csv", "pdf"))
    run_id = failed.value.run_id
    record = records.get_run(conn, run_id)
    assert (record.state, record.failure_class) == ("failed", "storage_failure")
    assert "No space left on device" in record.diagnosis and record.artifact_location is None
    key = f"globex/incident_summary/{PERIOD}/{run_id}"
    assert [k for k in all_keys(s3, PREFIX + "/") if run_id in k] == []  # neither final nor staging keys
    assert open_uploads(s3) == []
    assert not s3.exists(key) and key not in s3.list_runs()
    local = get_settings().artifacts_dir / key
    assert not local.exists() and not staging_location(local).exists()
    assert index_rows(conn, run_id) == []


def test_large_files_go_up_in_parts_and_an_interrupted_upload_is_aborted(s3, tmp_path, inject, moto_endpoint):
    big = os.urandom(11 * 1024 * 1024)
    store = s3_store.S3Store(BUCKET, PREFIX, endpoint=s3.endpoint, multipart_threshold=5 * 1024 * 1024,
                            part_size=5 * 1024 * 1024)
    staging = tmp_path / ".staging-run-big"
    staging.mkdir()
    (staging / "big.csv").write_bytes(big)
    (staging / "small.json").write_bytes(b"{}")
    manifest = {"files": [file_entry(staging / "big.csv", "csv", 1),
                          file_entry(staging / "small.json", "json", 0)]}

    inject("store_upload:storage")  # after the first of three parts
    with pytest.raises(StorageError, match="No space left"):
        store.publish(staging, "acme/big_report/2026-06/run-big-1", manifest)
    assert [k for k in all_keys(store) if "run-big-1" in k] == [] and open_uploads(store) == []

    recorder = Recorder(moto_endpoint)
    recorder.start()
    result = store.publish(staging, "acme/big_report/2026-06/run-big-2", manifest)
    parts = [r["url"] for r in recorder.stop() if r["method"] == "PUT" and "partNumber=" in r["url"]]
    assert len(parts) == 3 and all("/.staging-run-big-2/big.csv?" in u for u in parts)
    head = store.client.head_object(Bucket=BUCKET, Key=result.keys["big.csv"])
    assert head["ContentLength"] == len(big) and head["Metadata"]["sha256"] == hashlib.sha256(big).hexdigest()
    with store.open("acme/big_report/2026-06/run-big-2", "big.csv") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == hashlib.sha256(big).hexdigest()
    with pytest.raises(StorageError, match="refusing to overwrite"):
        store.publish(staging, "acme/big_report/2026-06/run-big-2", manifest)
    assert store.delete("acme/big_report/2026-06/run-big-2")
    assert [k for k in all_keys(store) if "run-big" in k] == [] and open_uploads(store) == []


# ------------------------------------------------------------------ the local folder


def test_local_store_is_the_default_and_unchanged(built, conn, local):
    template, pub = run(tenant="initech", formats=("csv",))
    key = f"initech/incident_summary/{PERIOD}/{pub.run_id}"
    assert pub.store == "local" and pub.location == get_settings().artifacts_dir / key
    csv_name = f"initech_incident_summary_{PERIOD}_internal_summary_by_severity_INTERNAL.csv"
    assert sorted(p.name for p in pub.location.iterdir()) == [csv_name, "manifest.json", "manifest.sig.json"]
    assert local.verify(key) == [] and local.exists(key) and key in local.list_runs("initech/")
    assert not staging_location(pub.location).exists()
    rows = index_rows(conn, pub.run_id)
    assert [(r["format"], r["store"], r["storage_key"]) for r in rows] == [
        ("csv", "local", str(pub.location / csv_name))]
    with local.open(key, csv_name) as fh:
        assert fh.read() == (pub.location / csv_name).read_bytes()
    with pytest.raises(ValueError, match="at most 60 seconds"):
        local.presign(key, csv_name, expires_in=120)
    with pytest.raises(StorageError, match="no URLs"):
        local.presign(key, csv_name, expires_in=30)  # no URL that could outlive its expiry


def test_s3_endpoint_without_bucket_is_refused(monkeypatch):
    monkeypatch.setenv("REPORTS_S3_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("REPORTS_S3_BUCKET", raising=False)
    with pytest.raises(StorageError, match="REPORTS_S3_BUCKET"):
        which_store.get_store()


# ------------------------------------------------------------------ retention, holds, index


def test_retention_caps_by_sensitivity():
    assert retention.retention_days(templates.load("compliance_evidence_summary", 1)) == 365  # restricted, 2555 asked
    assert retention.retention_days(templates.load("analyst_throughput", 1)) == 730  # confidential
    assert retention.retention_days(templates.load("connector_health", 1)) == 180  # internal: as the template says
    confidential = templates.load("incident_summary", 1).model_copy(update={"sensitivity": "confidential",
                                                                          "retention_days": 1000})
    assert retention.retention_days(confidential) == 730


def test_a_restricted_run_is_indexed_with_its_capped_retention(built, conn, local):
    template, pub = run("compliance_evidence_summary", tenant="acme", requester="manager@acme.example",
                        formats=("csv",))
    record = records.get_run(conn, pub.run_id)
    rows = index_rows(conn, pub.run_id)
    until = record.published_at + dt.timedelta(days=365)
    # the CSV of the full internal variant and of the redacted external one
    assert sorted((r["variant"], r["sensitivity"], r["retention_until"]) for r in rows) == [
        ("external", "restricted", until), ("internal", "restricted", until)]


@pytest.mark.parametrize("which", ["local", "s3"])
def test_retention_purges_through_the_store_and_skips_legal_holds(built, conn, request, which):
    store = request.getfixturevalue(which)
    _, doomed = run(tenant="acme", formats=("csv",))
    _, kept = run(tenant="acme", requester="manager@acme.example", formats=("csv",))
    for pub in (doomed, kept):
        assert store.exists(pub.key) and records.get_run(conn, pub.run_id).artifact_location == str(pub.location)

    with pytest.raises(policy.AccessDenied):  # an analyst may not, nor another tenant's admin
        artifact_service.set_hold(conn, kept.run_id, hold=True, actor="analyst@acme.example", reason="litigation")
    with pytest.raises(policy.AccessDenied):
        artifact_service.set_hold(conn, kept.run_id, hold=True, actor="tenant_admin@globex.example", reason="litigation")
    assert len(audit_rows(conn, "legal_hold.denied", kept.run_id)) == 2
    assert artifact_service.set_hold(conn, kept.run_id, hold=True, actor="tenant_admin@acme.example",
                                     reason="litigation 2026-17") == 1
    assert audit_rows(conn, "artifact.hold", kept.run_id)[0][:3] == ("tenant_admin@acme.example", kept.run_id,
                                                                      "succeeded")

    until = max(r["retention_until"] for p in (doomed, kept) for r in index_rows(conn, p.run_id))
    ids = [doomed.run_id, kept.run_id]
    assert artifact_service.sweep(conn, now=until - dt.timedelta(days=2), run_ids=ids).expired == []
    result = artifact_service.sweep(conn, now=until + dt.timedelta(seconds=1), run_ids=ids)
    assert (result.expired, result.held, result.failed) == ([doomed.run_id], [kept.run_id], {})

    # purged: gone from the store, index rows deleted, run expired, purge and expiry audited
    assert not store.exists(doomed.key) and doomed.key not in store.list_runs()
    if which == "s3":
        assert [k for k in all_keys(store) if doomed.run_id in k] == []
    else:
        assert not doomed.location.exists() and not list(doomed.location.parent.glob(f"*{doomed.run_id}*"))
    assert records.get_run(conn, doomed.run_id).state == "expired"
    assert all(r["deleted_at"] is not None for r in index_rows(conn, doomed.run_id))
    purges = audit_rows(conn, "artifact.purged", doomed.run_id)
    assert len(purges) == 1 and purges[0][0] == "svc:retention" and purges[0][2] == "succeeded"
    assert purges[0][3]["store"] == which and purges[0][3]["artifacts"][0]["format"] == "csv"
    assert len(audit_rows(conn, "run.expired", doomed.run_id)) == 1

    # held: still there, still completed; released by a platform admin, the next sweep takes it
    assert store.exists(kept.key) and store.verify(kept.key) == []
    assert records.get_run(conn, kept.run_id).state == "completed"
    assert all(r["deleted_at"] is None and r["legal_hold"] for r in index_rows(conn, kept.run_id))
    assert audit_rows(conn, "artifact.purged", kept.run_id) == []
    artifact_service.set_hold(conn, kept.run_id, hold=False, actor="platform@nexus.example", reason="case closed")
    assert artifact_service.expire(conn, now=until + dt.timedelta(seconds=1), run_ids=ids) == [kept.run_id]
    assert not store.exists(kept.key) and records.get_run(conn, kept.run_id).state == "expired"
    assert [r[0] for r in audit_rows(conn, "artifact.release", kept.run_id)] == ["platform@nexus.example"]


def test_artifacts_cli_lists_holds_and_releases(built, conn, local):
    _, pub = run(tenant="globex", requester="manager@globex.example", formats=("csv", "json"))
    denied = invoke("artifacts", "hold", pub.run_id, "--as", "viewer@globex.example", "--reason", "x")
    assert denied.exit_code == 1 and "may not legal_hold" in denied.output and "Traceback" not in denied.output
    held = invoke("artifacts", "hold", pub.run_id, "--as", "tenant_admin@globex.example",
                             "--reason", "regulator request")
    assert held.exit_code == 0, held.output
    assert "2 artifacts on legal hold" in held.output
    listed = invoke("artifacts", "list", "--run", pub.run_id)
    assert listed.exit_code == 0 and listed.output.count("LEGAL HOLD") == 2
    assert f"globex_incident_summary_{PERIOD}_internal_INTERNAL.json" in listed.output
    assert pub.run_id not in invoke("artifacts", "list", "--tenant", "acme", "--limit", "100000").output
    again = invoke("artifacts", "hold", pub.run_id, "--as", "tenant_admin@globex.example", "--reason", "x")
    assert again.exit_code == 1 and "already on legal hold" in again.output
    released = invoke("artifacts", "release", pub.run_id, "--as", "platform@nexus.example",
                                 "--reason", "done")
    assert released.exit_code == 0 and "released" in released.output
    assert not artifact_index.held(conn, pub.run_id)
