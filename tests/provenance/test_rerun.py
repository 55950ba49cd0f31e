"""Reruns reproduce a published run's bytes; the manifest names the Gate C approval of a distributed
run and verify catches a changed one.

One run serves the module: a restricted report (both variants, all four formats) from a schedule
whose distribution an approver approved, made in process as tests/delivery does. The approval row
is changed and put back inside one test; the run's files are never touched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
import zipfile
from pathlib import Path

import pypdf
import pytest

from orchestration.artifacts.store import MANIFEST
from orchestration.catalog import templates
from orchestration.db import warehouse
from orchestration.runs import engine, records, rerun, snapshot
from orchestration.runs.request import ReportRequest
from orchestration.runs.run_record import RunOrigin
from orchestration.schedules import store as schedule_store
from orchestration.services import delivery as delivery_service
from tests.helpers.audit import audit_outcomes
from tests.helpers.cli import invoke as cli

from ..conftest import PERIOD, analyst

OWNER = "manager@acme.example"
APPROVER = "approver@nexus.example"


@pytest.fixture(scope="module")
def distributed(built):
    """(published run, schedule id, the approval's recipient) of a restricted report from an approved schedule."""
    recipient = f"ciso+{uuid.uuid4().hex[:8]}@acme.example"
    with warehouse.connection() as conn:
        delivery_service.allow_domain(conn, "acme", "acme.example", actor="tenant_admin@acme.example")
        sid = schedule_store.create(conn, "compliance_evidence_summary", tenant_id="acme", cron="0 6 1 * *",
                                    timezone="UTC", actor=OWNER, reason="provenance rerun test",
                                    recipients=[f"email:{recipient}"])
        with conn, conn.cursor() as cur:  # no sensor ticks an archived schedule; Gate C keys on the schedule
            cur.execute("update control.schedules set state = 'archived' where schedule_id = %s", (sid,))
        delivery_service.approve(conn, sid, approver=APPROVER, recipients=[f"email:{recipient}"], channels=["email"])
    template = templates.load("compliance_evidence_summary")
    request = ReportRequest.for_period(template, "acme", PERIOD, requester=OWNER, trigger="schedule")
    return engine.run_report(template, request, RunOrigin(schedule_id=str(sid))), sid, recipient


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rerun_cli(run_id: str, *args: str):
    result = cli("provenance", "rerun", run_id, "--as", analyst("acme"), *args)
    lines = [line for line in result.stdout.splitlines() if line.startswith(("same ", "DIFFERS "))]
    return result, lines


# ------------------------------------------------------------------ reproducible bytes


def test_a_rerun_from_the_snapshot_reproduces_every_file_byte_for_byte(distributed, tmp_path, conn):
    published, _, _ = distributed
    folder = Path(published.location)
    names = [f["name"] for f in published.manifest["files"]]
    assert {n.rsplit(".", 1)[1] for n in names} == {"csv", "json", "xlsx", "pdf"}
    assert {f["variant"] for f in published.manifest["files"]} == {"internal", "external"}
    before = sorted(p.name for p in folder.iterdir())

    result, lines = rerun_cli(published.run_id, "--into", str(tmp_path / "again"))

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (f"rerun of run {published.run_id} from its snapshot, generated_at "
                                             f"{published.manifest['generated_at']}")
    # each line names the file and the sha256 both sides have, recomputed here from the bytes
    assert lines == [f"same {n}: sha256 {sha256(folder / n)}" for n in names]
    for n in names:
        assert (tmp_path / "again" / n).read_bytes() == (folder / n).read_bytes()
    # nothing published: the run's folder is as it was, and no run record was added for the rerun
    assert sorted(p.name for p in folder.iterdir()) == before
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from control.report_runs where run_id like %s", (published.run_id + "%",))
        assert cur.fetchone()[0] == 1
    assert audit_outcomes(conn, "provenance.rerun", f"rerun of run {published.run_id}")[-1][0] == "succeeded"


def test_xlsx_and_pdf_carry_the_runs_generation_time_as_their_document_dates(distributed):
    published, _, _ = distributed
    at = dt.datetime.fromisoformat(published.manifest["generated_at"])
    by_format = {f["format"]: Path(published.location) / f["name"]
                 for f in published.manifest["files"] if f["variant"] == "internal"}
    with zipfile.ZipFile(by_format["xlsx"]) as book:
        core = book.read("docProps/core.xml").decode()
        # the zip members are dated by the generation time too (UTC; a zip keeps even seconds)
        utc = at.astimezone(dt.UTC)
        assert {i.date_time for i in book.infolist()} == {(*utc.timetuple()[:5], utc.second - utc.second % 2)}
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f">{stamp}</dcterms:created>" in core and f">{stamp}</dcterms:modified>" in core
    metadata = pypdf.PdfReader(str(by_format["pdf"])).metadata
    assert (metadata.creation_date, metadata.modification_date) == (at, at)


def test_the_recorded_generation_time_is_what_xlsx_pdf_and_json_reproduce(distributed, tmp_path, conn):
    """Rendered an hour later than recorded, the CSV stays the same and the files that carry a time
    differ: so the rerun's sameness comes from the recorded time, and a difference is reported."""
    published, _, _ = distributed
    manifest = json.loads((Path(published.location) / MANIFEST).read_bytes())
    later = dt.datetime.fromisoformat(manifest["generated_at"]) + dt.timedelta(hours=1)
    manifest["generated_at"] = later.isoformat()
    record = records.get_run(conn, published.run_id)
    result = rerun.rerun(conn, record, templates.load("compliance_evidence_summary"), manifest, tmp_path)
    same = {f.name.rsplit(".", 1)[1] for f in result.files if f.same}
    differs = {f.name.rsplit(".", 1)[1] for f in result.files if not f.same}
    assert (same, differs) == ({"csv"}, {"json", "xlsx", "pdf"})
    assert not result.reproduced
    assert all(line.startswith("DIFFERS ") for line in (f.line for f in result.files if not f.same))


def test_a_rerun_without_its_snapshot_reproduces_csv_and_json_from_the_warehouse(built, conn):
    template = templates.load("incident_summary", 1)
    request = ReportRequest.for_period(template, "acme", PERIOD, requester=analyst("acme"), formats=("csv", "json"))
    published = engine.run_report(template, request)
    assert published.manifest["gate_c"] is None  # not from a schedule: no distribution approval to name
    record = records.get_run(conn, published.run_id)
    snapshot.drop(conn, published.run_id, list(record.snapshot_tables))  # as if the snapshot were purged

    result, lines = rerun_cli(published.run_id)

    assert result.exit_code == 0, result.output
    assert "from the warehouse (its snapshot is gone)" in result.stdout.splitlines()[0]
    assert "note: source loaded since the run" not in result.stdout  # the recorded watermarks still hold
    folder = Path(published.location)
    assert lines == [f"same {f['name']}: sha256 {sha256(folder / f['name'])}" for f in published.manifest["files"]]
    with conn, conn.cursor() as cur:  # the rerun's scratch snapshot tables are gone again
        cur.execute("select count(*) from pg_tables where schemaname = 'snapshots' and tablename like %s",
                    (f"r_{published.run_id}%",))
        assert cur.fetchone()[0] == 0


def test_a_rerun_is_refused_to_another_tenants_analyst_and_never_writes_into_the_store(distributed, conn):
    published, _, _ = distributed
    target = f"rerun of run {published.run_id}"
    refused = cli("provenance", "rerun", published.run_id, "--as", analyst("globex"))
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "not a member of tenant acme" in refused.output
    assert [o for o, _ in audit_outcomes(conn, "run.denied", target)] == ["denied"]
    inside = Path(published.location) / "again"
    refused = cli("provenance", "rerun", published.run_id, "--as", analyst("acme"), "--into", str(inside))
    assert refused.exit_code == 1 and "inside the artifact store" in refused.output
    assert not inside.exists()


# ------------------------------------------------------------------ Gate C in the manifest


def test_the_manifest_names_the_gate_c_approval_of_a_distributed_run(distributed, conn):
    published, sid, recipient = distributed
    with conn, conn.cursor() as cur:
        cur.execute("select approval_id, approver, approved_at, recipients, channels, distribution_hash "
                    "from control.distribution_approvals where schedule_id = %s", (sid,))
        ((approval_id, approver, approved_at, recipients, channels, digest),) = cur.fetchall()
    assert published.manifest["gate_c"] == {
        "schedule_id": sid, "approval_id": approval_id, "approved_by": APPROVER, "approved_at": approved_at.isoformat(),
        "recipients": [f"email:{recipient}"], "channels": ["email"], "distribution_hash": digest}
    assert (approver, recipients, channels) == (APPROVER, [f"email:{recipient}"], ["email"])


def test_verify_checks_the_gate_c_approval_and_names_a_changed_one(distributed, conn):
    published, sid, _ = distributed
    ok = cli("provenance", "verify", published.run_id)
    assert ok.exit_code == 0, ok.output
    (line,) = [x for x in ok.stdout.splitlines() if x.startswith("ok gate_c:")]
    assert f"of schedule {sid} by {APPROVER}" in line
    approval_id = published.manifest["gate_c"]["approval_id"]
    with conn, conn.cursor() as cur:
        cur.execute("update control.distribution_approvals set approver = 'someone-else@nexus.example' "
                    "where approval_id = %s", (approval_id,))
    try:
        tampered = cli("provenance", "verify", published.run_id)
    finally:
        with conn, conn.cursor() as cur:
            cur.execute("update control.distribution_approvals set approver = %s where approval_id = %s",
                        (APPROVER, approval_id))
    assert tampered.exit_code == 1
    assert (f"FAILED gate_c: distribution approval #{approval_id} of schedule {sid}: approved_by "
            f"'{APPROVER}' in the manifest, 'someone-else@nexus.example' in the control schema") in tampered.stdout

