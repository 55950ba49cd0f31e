"""/reports/definitions/{id}/run and /reports/runs over real HTTP: a definition's run goes
through the run engine (worker, Dagster job, snapshot, Gate B, manifest, publish) and ends in a
file the caller downloads through a short-lived link; numbers recomputed from raw data."""

from __future__ import annotations

import csv
import io
import json
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest

from orchestration.services import provenance

from .conftest import auth
from .test_definitions import APPROVER, DEFS, JUNE, _by_severity, _raw_opened

RUNS = "/reports/runs"


def _active_definition(client, token_for, entity, **over) -> str:
    analyst = auth(token_for("analyst@acme.example"))
    created = client.post(DEFS, json=_by_severity(entity, **over), headers=analyst)
    assert created.status_code == 201, created.text
    definition_id = created.json()["report_definition_id"]
    activated = client.post(f"{DEFS}/{definition_id}/activate", headers=auth(token_for(APPROVER)))
    assert activated.status_code == 200, activated.text
    return definition_id


def _wait(client, headers, run_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"{RUNS}/{run_id}", headers=headers).json()
        if body["status"] in ("completed", "failed", "cancelled", "expired") or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def test_run_status_download_bytes(client, token_for, entity, conn):
    definition_id = _active_definition(client, token_for, entity)
    analyst = auth(token_for("analyst@acme.example"))
    submitted = client.post(f"{DEFS}/{definition_id}/run", json={"format": "csv", "parameters": JUNE},
                            headers={**analyst, "X-Request-ID": "run-e2e-1", "Idempotency-Key": "k-e2e-1"})
    assert submitted.status_code == 202, submitted.text
    run = submitted.json()
    assert run["status"] in ("queued", "running") and run["submitted_at"] and run["report_definition_id"] == definition_id
    assert submitted.headers["location"] == f"{RUNS}/{run['run_id']}"
    again = client.post(f"{DEFS}/{definition_id}/run", json={"format": "csv", "parameters": JUNE},
                        headers={**analyst, "Idempotency-Key": "k-e2e-1"})
    assert again.status_code == 202 and again.json()["run_id"] == run["run_id"]

    done = _wait(client, analyst, run["run_id"])
    assert done["status"] == "completed", done
    expected = _raw_opened(conn, "acme")
    assert done["row_count"] == len(expected) and done["correlation_id"] == "run-e2e-1" and done["completed_at"]

    link = client.get(f"{RUNS}/{run['run_id']}/download", params={"format": "csv"}, headers=analyst)
    assert link.status_code == 200, link.text
    assert link.json()["expires_at"] and link.json()["format"] == "csv"
    file = httpx.get(link.json()["download_url"], timeout=30)
    assert file.status_code == 200
    rows = list(csv.DictReader(io.StringIO(file.content.decode("utf-8-sig"))))
    assert {r["severity"]: int(r["opened"]) for r in rows} == expected

    with conn, conn.cursor() as cur:
        cur.execute("select artifact_location, dagster_run_id, correlation_id from control.report_runs where run_id = %s",
                    (run["run_id"],))
        location, dagster_run_id, correlation = cur.fetchone()
    assert dagster_run_id and correlation == "run-e2e-1"
    manifest = json.loads((Path(location) / "manifest.json").read_text())
    assert manifest["correlation_id"] == "run-e2e-1" and manifest["template"]["report_definition"]["id"] == definition_id
    assert manifest["gate_b"]["passed"] is True
    # The download is named by tenant, definition, window, variant and marking (one section: no section name).
    marking = manifest["classification"]["marking"]
    assert marking == manifest["template"]["sensitivity"].upper()
    name = re.search(r'filename="([^"]+)"', file.headers["content-disposition"]).group(1)
    assert re.fullmatch(rf"acme_{definition_id}_2026-06-01_2026-07-01_internal_{marking}\.csv", name), name

    # issue 16: the manifest names the definition version's activation, and the run verifies against
    # the compiled template kept on its run record
    with conn, conn.cursor() as cur:
        cur.execute("select activated_by, activated_at, validation_hash from control.report_definition_versions "
                    "where definition_id = %s and version = %s", (definition_id, manifest["template"]["version"]))
        activated_by, activated_at, validation_hash = cur.fetchone()
    assert activated_by == APPROVER
    assert manifest["approval"] == {
        "kind": "report_definition_version", "definition_id": definition_id, "version": manifest["template"]["version"],
        "activated_by": APPROVER, "activated_at": activated_at.isoformat(),
        "validation_hash": validation_hash}
    checks = list(provenance.verify_run(run["run_id"], conn=conn))
    assert all(c.ok for c in checks) and [c.name for c in checks][-2:] == ["template", "audit"], checks
    assert "the template kept on the run record" in checks[-2].detail


def test_draft_definitions_do_not_run_and_other_tenants_see_nothing(client, token_for, entity):
    analyst = auth(token_for("analyst@acme.example"))
    draft = client.post(DEFS, json=_by_severity(entity), headers=analyst).json()["report_definition_id"]
    refused = client.post(f"{DEFS}/{draft}/run", json={"format": "csv"}, headers=analyst)
    assert refused.status_code == 409 and "activates it" in refused.json()["detail"]
    other = auth(token_for("analyst@globex.example"))
    assert client.post(f"{DEFS}/{draft}/run", json={"format": "csv"}, headers=other).status_code == 404
    assert client.get(f"{RUNS}/{uuid.uuid4().hex[:16]}", headers=analyst).status_code == 404


def test_an_idempotency_key_means_one_request(quiet, token_for, entity, held_runs):
    definition_id = _active_definition(quiet, token_for, entity)
    analyst = {**auth(token_for("analyst@acme.example")), "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    first = quiet.post(f"{DEFS}/{definition_id}/run", json={"format": "xlsx", "parameters": JUNE}, headers=analyst)
    assert first.status_code == 202 and held_runs[-1] == first.json()["run_id"]
    assert first.json()["formats"] == ["xlsx"] and first.json()["status"] == "queued"
    launched = len(held_runs)
    retry = quiet.post(f"{DEFS}/{definition_id}/run", json={"format": "xlsx", "parameters": JUNE}, headers=analyst)
    assert retry.json()["run_id"] == first.json()["run_id"] and len(held_runs) == launched  # not launched twice
    other = quiet.post(f"{DEFS}/{definition_id}/run", json={"format": "csv", "parameters": JUNE}, headers=analyst)
    assert other.status_code == 422 and "different request" in other.json()["detail"]
    # another tenant learns nothing about the run, not even that it exists
    globex = auth(token_for("analyst@globex.example"))
    run = f"{RUNS}/{first.json()['run_id']}"
    for path in (run, f"{run}/download"):
        theirs, unknown = quiet.get(path, headers=globex), quiet.get(path.replace(run, f"{RUNS}/0000"), headers=globex)
        assert theirs.status_code == unknown.status_code == 404 and theirs.json()["detail"].startswith("no run")
    not_yet = quiet.get(f"{run}/download", params={"format": "xlsx"}, headers=auth(token_for("analyst@acme.example")))
    assert not_yet.status_code == 409 and "queued" in not_yet.json()["detail"]


def test_execution_validates_again_and_fails_closed(quiet, token_for, entity, conn):
    from orchestration.runs.failures import RunFailed
    from orchestration.runs.run_record import RunOrigin
    from orchestration.services import runs as run_service

    definition_id = _active_definition(quiet, token_for, entity)
    analyst = auth(token_for("analyst@acme.example"))
    run_id = quiet.post(f"{DEFS}/{definition_id}/run", json={"format": "csv", "parameters": JUNE},
                        headers=analyst).json()["run_id"]
    admin = auth(token_for("platform@nexus.example"))
    entities = "/reporting/registry/entities"
    current = quiet.get(f"{entities}/{entity['entity_id']}", headers=admin).json()
    restricted = [{**f, "classification": "restricted"} if f["name"] == "incidents_opened" else f
                  for f in current["allowed_fields"]]
    assert quiet.patch(f"{entities}/{entity['entity_id']}", json={"allowed_fields": restricted},
                       headers=admin).status_code == 200
    try:
        submission = run_service.RunSubmission(template_key=definition_id, tenant_id="acme",
                                               requester="analyst@acme.example")
        with pytest.raises(RunFailed) as failed:
            run_service.execute(conn, submission, RunOrigin(run_id=run_id))
        assert failed.value.failure_class == "policy_violation"
    finally:
        quiet.patch(f"{entities}/{entity['entity_id']}", json={"allowed_fields": current["allowed_fields"]},
                    headers=admin)
    status = quiet.get(f"{RUNS}/{run_id}", headers=analyst).json()
    assert status["status"] == "failed" and status["row_count"] is None
    assert status["errors"][0]["class"] == "policy_violation"
    assert "re-validation" in status["errors"][0]["diagnosis"] and "classified restricted" in status["errors"][0]["diagnosis"]
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from pg_tables where schemaname = 'snapshots' and tablename like %s", (f"r_{run_id}%",))
        assert cur.fetchone()[0] == 0  # nothing was queried
