"""/pipelines (and its deprecated alias /exports/pipelines) over real HTTP: a batch of two
definitions runs through the run engine (worker, Dagster job, publish) and reaches a real
webhook receiver once per file, however often the batch is asked for or looked at; a member that
cannot run is named and nothing of it is delivered; another tenant sees nothing."""

from __future__ import annotations

import json
import time

import pytest

from orchestration.db import warehouse
from orchestration.services import delivery as delivery_service
from tests.helpers.audit import audit_log
from tests.helpers.cli import invoke, one_line_error

from .conftest import auth
from .test_definitions import APPROVER, DEFS, JUNE
from .test_runs import _active_definition

PIPES, ALIAS = "/pipelines", "/exports/pipelines"
ANALYST = "analyst@acme.example"


@pytest.fixture(autouse=True)
def loopback_webhooks(monkeypatch):
    # The receiver is plain http on loopback: the outbound checker's development switch.
    monkeypatch.setenv("REPORTS_ALLOW_INSECURE_OUTBOUND", "1")
    monkeypatch.setenv("REPORTS_WEBHOOK_TIMEOUT", "5")


def _hook(receiver, path: str) -> str:
    url = f"{receiver.url}/{path}"
    with warehouse.connection() as conn:
        delivery_service.register_webhook(conn, "acme", url, actor="tenant_admin@acme.example")
    return url


def _active_pipeline(client, token_for, members, url: str) -> str:
    analyst = auth(token_for(ANALYST))
    body = {"pipeline_name": "Weekly SOC export", "members": members, "format": "csv",
            "destination": {"type": "webhook", "address": url}}
    created = client.post(PIPES, json=body, headers=analyst)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "draft" and created.headers["etag"]
    pipeline_id = created.json()["pipeline_id"]
    assert client.post(f"{PIPES}/{pipeline_id}/activate", headers=analyst).status_code == 403  # its author
    activated = client.post(f"{PIPES}/{pipeline_id}/activate", headers=auth(token_for(APPROVER)))
    assert activated.status_code == 200 and activated.json()["status"] == "active", activated.text
    return pipeline_id


def _settled(client, headers, path: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(path, headers=headers).json()
        if body["status"] != "running" or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def _posts(receiver, path: str) -> list[dict]:
    return [json.loads(r["body"]) for r in receiver.requests if r["path"] == f"/{path}"]


def test_a_batch_of_two_definitions_delivers_each_file_once(client, token_for, entity, receiver, conn):
    first = _active_definition(client, token_for, entity)
    second = _active_definition(client, token_for, entity, report_name="Opened incidents, second copy")
    archived = _active_definition(client, token_for, entity, report_name="Soon archived")
    pipeline_id = _active_pipeline(client, token_for, [first, second], _hook(receiver, "batch"))
    failing_id = _active_pipeline(client, token_for, [first, archived], _hook(receiver, "partial"))
    analyst = auth(token_for(ANALYST))
    gone = client.post(f"{DEFS}/{archived}/archive", json={"reason_code": "NO_LONGER_NEEDED"}, headers=analyst)
    assert gone.status_code == 200, gone.text

    ask = {**analyst, "Idempotency-Key": "pipe-june-1", "X-Request-ID": "pipe-e2e-1"}
    started = client.post(f"{PIPES}/{pipeline_id}/run", json={"parameters": JUNE}, headers=ask)
    assert started.status_code == 202, started.text
    batch = started.json()
    assert [m["member"] for m in batch["members"]] == [first, second] and all(m["run_id"] for m in batch["members"])
    partial = client.post(f"{PIPES}/{failing_id}/run", json={"parameters": JUNE},
                          headers={**analyst, "X-Request-ID": "pipe-e2e-2"}).json()

    one = f"{PIPES}/{pipeline_id}/runs/{batch['pipeline_run_id']}"
    done = _settled(client, analyst, one)
    assert done["status"] == "completed" and done["failed_members"] == [], json.dumps(done)
    assert [m["delivery"] for m in done["members"]] == ["delivered", "delivered"]
    posts = _posts(receiver, "batch")
    assert sorted(p["run_id"] for p in posts) == sorted(m["run_id"] for m in done["members"])
    assert all(len(p["files"]) == 1 and p["files"][0]["format"] == "csv" for p in posts)

    # The same key again, on the canonical path and on the alias, then reads of both: the same
    # batch, and nothing delivered a second time.
    again = client.post(f"{PIPES}/{pipeline_id}/run", json={"parameters": JUNE}, headers=ask)
    aliased = client.post(f"{ALIAS}/{pipeline_id}/run", json={"parameters": JUNE}, headers=ask)
    assert again.status_code == aliased.status_code == 202
    assert again.json()["pipeline_run_id"] == aliased.json()["pipeline_run_id"] == batch["pipeline_run_id"]
    listed = client.get(f"{PIPES}/{pipeline_id}/runs", headers=analyst).json()
    assert client.get(f"{ALIAS}/{pipeline_id}/runs", headers=analyst).json() == listed
    assert [b["pipeline_run_id"] for b in listed["items"]] == [batch["pipeline_run_id"]]
    assert len(_posts(receiver, "batch")) == 2

    failed = _settled(client, analyst, f"{ALIAS}/{failing_id}/runs/{partial['pipeline_run_id']}")
    assert failed["status"] == "partially_failed" and failed["failed_members"] == [archived], failed
    refused = failed["members"][1]
    assert refused["run_id"] is None and "archived" in refused["error"] and refused["delivery"] == "none"
    assert [p["run_id"] for p in _posts(receiver, "partial")] == [failed["members"][0]["run_id"]]

    actions = [a for (a,) in audit_log(conn, "action", correlation_id="pipe-e2e-1")]
    assert {"pipeline.run", "pipeline.export", "pipeline.run.settled"} <= set(actions)
    assert actions.count("pipeline.export") == 2
    exported = audit_log(conn, "target", "outcome", action="pipeline.export", correlation_id="pipe-e2e-2")
    assert sorted(exported) == sorted([(first, "succeeded"), (archived, "failed")])


def test_lifecycle_versions_and_other_tenants(client, token_for, entity, receiver):
    member = _active_definition(client, token_for, entity)
    pipeline_id = _active_pipeline(client, token_for, [member], _hook(receiver, "lifecycle"))
    analyst, one = auth(token_for(ANALYST)), f"{PIPES}/{pipeline_id}"
    etag = client.get(one, headers=analyst).headers["etag"]
    patched = client.patch(one, json={"format": "xlsx"}, headers={**analyst, "If-Match": etag})
    assert patched.status_code == 200 and patched.json()["version_id"] == 2 and patched.json()["active_version_id"] == 1
    assert client.patch(one, json={"format": "json"}, headers={**analyst, "If-Match": etag}).status_code == 412
    paused = client.post(f"{one}/pause", json={"reason_code": "OTHER", "reason_text": "quiet week"}, headers=analyst)
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert client.post(f"{one}/pause", json={"reason_code": "OTHER"}, headers=analyst).status_code == 422
    refused = client.post(f"{one}/run", json={"parameters": JUNE}, headers=analyst)
    assert refused.status_code == 409 and "paused" in refused.json()["detail"]
    bad = client.post(PIPES, json={"pipeline_name": "x", "members": ["no_such_template"],
                                   "destination": {"type": "webhook", "address": "https://h.example/x"}}, headers=analyst)
    assert bad.status_code == 422 and "no_such_template" in bad.json()["detail"]

    globex = auth(token_for("analyst@globex.example"))
    for method, suffix in (("GET", ""), ("POST", "/run"), ("GET", "/runs"), ("POST", "/activate")):
        assert client.request(method, one + suffix, headers=globex).status_code == 404
        assert client.request(method, f"{ALIAS}/{pipeline_id}{suffix}", headers=globex).status_code == 404
    assert pipeline_id not in [p["pipeline_id"] for p in client.get(PIPES, headers=globex).json()["items"]]

    # The command line calls the same services: the same pipeline, the same refusals.
    listed = invoke("pipelines", "list", "--as", ANALYST)
    assert listed.exit_code == 0 and pipeline_id in listed.output and "paused" in listed.output
    shown = invoke("pipelines", "show", pipeline_id, "--as", ANALYST)
    assert shown.exit_code == 0 and "version 2 (active: 1)" in shown.output, shown.output
    assert f"members: {member}; format xlsx" in shown.output  # the newest version, not yet active
    paused_run = invoke("pipelines", "run", pipeline_id, "--as", ANALYST)
    assert paused_run.exit_code == 1 and "paused" in one_line_error(paused_run.stderr)
    theirs = invoke("pipelines", "show", pipeline_id, "--as", "analyst@globex.example")
    assert theirs.exit_code == 1 and f"no pipeline {pipeline_id}" in one_line_error(theirs.stderr)

    archived = client.post(f"{one}/archive", json={"reason_code": "NO_LONGER_NEEDED"}, headers=analyst)
    assert archived.status_code == 200 and archived.json()["archived_at"]


def test_the_alias_is_deprecated_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("", "/{pipeline_id}", "/{pipeline_id}/run", "/{pipeline_id}/runs"):
        for method, operation in paths[PIPES + path].items():
            assert not operation.get("deprecated"), (path, method)
            assert paths[ALIAS + path][method]["deprecated"] is True
