"""Issue 12 over real HTTP: the audit trace of one request (API and CLI, auditors only), run status
with row count and XLSX sheets, and definitions invalidated by a registry change when it is made."""

from __future__ import annotations

import io
import uuid

import httpx
import openpyxl
import pytest

from orchestration.exports.xlsx_export import HEADER_ROWS
from tests.helpers.audit import audit_log
from tests.helpers.cli import invoke, one_line_error

from .conftest import ENTITIES, auth
from .test_definitions import DEFS, JUNE, PLATFORM, _by_severity, _raw_opened
from .test_runs import RUNS, _active_definition, _wait

AUDITOR = "auditor@acme.example"
CHAIN = ["request", "validation", "run", "gate_b", "publish", "delivery", "download"]


@pytest.fixture(scope="module")
def auditor(built):
    from orchestration.access import policy
    from orchestration.db import warehouse
    from orchestration.services import principals

    with warehouse.connection() as conn:
        if policy.get_principal(conn, AUDITOR) is None:
            principals.add(conn, AUDITOR, roles=["auditor"], tenants=["acme"], actor=PLATFORM)
    return AUDITOR


def _first_of(steps: list[str]) -> list[str]:
    """The steps in the order each first appears."""
    return list(dict.fromkeys(steps))


@pytest.fixture()
def mail(smtp, monkeypatch, built):
    """The real SMTP server of the suite, and acme.example on acme's allow-list."""
    from orchestration.db import warehouse
    from orchestration.services import delivery

    for name, value in (("HOST", "127.0.0.1"), ("PORT", str(smtp[1])), ("TLS", "none"),
                        ("FROM", "reports@nexus.example"), ("TIMEOUT", "5")):
        monkeypatch.setenv(f"REPORTS_SMTP_{name}", value)
    with warehouse.connection() as conn:
        delivery.allow_domain(conn, "acme", "acme.example", actor="tenant_admin@acme.example")
    return smtp[0]


def test_trace_of_a_run_submission_shows_the_chain_in_order(client, token_for, entity, conn, auditor, mail):
    from orchestration.services import delivery
    definition_id = _active_definition(client, token_for, entity)
    analyst = auth(token_for("analyst@acme.example"))
    rid = f"trace-{uuid.uuid4().hex[:12]}"
    # X-Correlation-ID is honoured like X-Request-ID, and echoed under both names
    submitted = client.post(f"{DEFS}/{definition_id}/run", json={"format": "xlsx", "parameters": JUNE},
                            headers={**analyst, "X-Correlation-ID": rid})
    assert submitted.status_code == 202, submitted.text
    assert submitted.headers["x-request-id"] == submitted.headers["x-correlation-id"] == rid
    run_id = submitted.json()["run_id"]
    done = _wait(client, analyst, run_id)
    assert done["status"] == "completed", done
    to = f"trace-{uuid.uuid4().hex[:6]}@acme.example"
    sent = delivery.deliver_run(conn, run_id, [f"email:{to}"])
    assert sent.enqueued and [m["To"] for m in mail.messages if m["To"] == to] == [to]

    link = client.get(f"{RUNS}/{run_id}/download", params={"format": "xlsx"}, headers=analyst)
    assert link.status_code == 200, link.text
    file = httpx.get(link.json()["download_url"], timeout=30)
    assert file.status_code == 200
    # run status: row_count and the XLSX sheets, as the downloaded workbook has them
    book = openpyxl.load_workbook(io.BytesIO(file.content), read_only=True)
    data = book.worksheets[1:]
    assert done["sheets"] == [ws.title for ws in data] and len(done["sheets"]) == 1
    expected = _raw_opened(conn, "acme")
    assert done["row_count"] == len(expected) == data[0].max_row - HEADER_ROWS
    assert set(expected) <= {v for row in data[0].iter_rows(values_only=True) for v in row}

    traced = client.get(f"/audit/trace/{rid}", headers=auth(token_for(auditor)))
    assert traced.status_code == 200, traced.text
    body = traced.json()
    events = body["events"]
    assert body["run_ids"] == [run_id]
    assert [s for s in _first_of([e["step"] for e in events]) if s in CHAIN] == CHAIN, [
        (e["step"], e["action"]) for e in events]
    assert events[0]["action"] == "api.request" and events[0]["details"]["path"].endswith(f"{definition_id}/run")
    assert [e["elapsed_ms"] for e in events] == sorted(e["elapsed_ms"] for e in events) and events[0]["elapsed_ms"] == 0
    actions = [e["action"] for e in events]
    assert {"run.validated", "run.requested", "run.gate_b", "report.exported", "delivery.enqueue", "delivery.send",
            "link.create", "link.download"} <= set(actions)
    assert actions.count("run.validated") == 2  # at admission and again in the worker before the query
    published = next(e for e in events if e["action"] == "report.exported")
    assert published["details"]["run_id"] == run_id and published["details"]["total_seconds"] > 0
    assert next(e for e in events if e["action"] == "run.gate_b")["outcome"] == "succeeded"

    # the CLI shows the same chain, one row per event, in the same order
    shown = invoke("audit", "trace", rid, "--as", auditor)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0].startswith(f"trace {rid}: {len(events)} rows") and run_id in lines[0]
    listed = [a for line in lines for a in line.split() if a in set(actions)]
    assert listed == actions


def test_only_auditors_and_platform_admins_trace(client, token_for, conn, auditor):
    rid = f"trace-{uuid.uuid4().hex[:12]}"
    analyst = auth(token_for("analyst@acme.example"))
    assert client.get(DEFS, headers={**analyst, "X-Request-ID": rid}).status_code == 200
    assert client.get(f"/audit/trace/{rid}", headers=auth(token_for(PLATFORM))).status_code == 200
    denied_rid = f"denied-{uuid.uuid4().hex[:12]}"
    refused = client.get(f"/audit/trace/{rid}", headers={**analyst, "X-Request-ID": denied_rid})
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert "audit_trace" in refused.json()["detail"]
    assert audit_log(conn, "actor", "outcome", action="audit_trace.denied", correlation_id=denied_rid) == [
        ("analyst@acme.example", "denied")]
    # an auditor of acme sees nothing of another tenant's requests
    globex_rid = f"globex-{uuid.uuid4().hex[:12]}"
    assert client.get(DEFS, headers={**auth(token_for("analyst@globex.example")), "X-Request-ID": globex_rid}).status_code == 200
    assert client.get(f"/audit/trace/{globex_rid}", headers=auth(token_for(auditor))).status_code == 404
    cli = invoke("audit", "trace", rid, "--as", "analyst@acme.example")
    assert cli.exit_code == 1 and "audit_trace" in one_line_error(cli.output)


def test_removing_a_field_marks_its_definitions_invalid_and_runs_refuse(quiet, token_for, entity, conn):
    analyst, admin = auth(token_for("analyst@acme.example")), auth(token_for(PLATFORM))
    n = entity["entity_name"]
    resolved = _by_severity(entity, aggregates=[{"function": "sum", "field": f"{n}.incidents_resolved", "alias": "resolved"}])
    definition_id = _active_definition(quiet, token_for, entity, aggregates=resolved["aggregates"])
    one = f"{DEFS}/{definition_id}"
    current = quiet.get(f"{ENTITIES}/{entity['entity_id']}", headers=admin).json()
    kept = [f for f in current["allowed_fields"] if f["name"] != "incidents_resolved"]
    rid = f"patch-{uuid.uuid4().hex[:12]}"
    patched = quiet.patch(f"{ENTITIES}/{entity['entity_id']}", json={"allowed_fields": kept},
                          headers={**admin, "X-Request-ID": rid})
    assert patched.status_code == 200, patched.text
    try:
        shown = quiet.get(one, headers=analyst).json()
        assert shown["validation_status"] == "invalid" and shown["invalid_fields"] == [f"{n}.incidents_resolved"]
        assert shown["status"] == "active" and "incidents_resolved" in shown["invalid_reason"]
        listed = quiet.get(DEFS, params={"status": "invalid"}, headers=analyst).json()["items"]
        assert definition_id in [d["report_definition_id"] for d in listed]
        assert all(d["validation_status"] == "invalid" for d in listed)
        theirs = quiet.get(DEFS, params={"status": "invalid"}, headers=auth(token_for("analyst@globex.example")))
        assert definition_id not in [d["report_definition_id"] for d in theirs.json()["items"]]
        refused = quiet.post(f"{one}/run", json={"format": "csv", "parameters": JUNE}, headers=analyst)
        assert refused.status_code == 409, refused.text
        assert "is invalid" in refused.json()["detail"] and f"{n}.incidents_resolved" in refused.json()["detail"]
        # marked in the PATCH's own transaction, audited with its correlation id
        ((details,),) = audit_log(conn, "details", action="definition.invalidated", target=definition_id)
        assert details["fields"] == [f"{n}.incidents_resolved"] and details["cause"] == f"registry.update {entity['entity_id']}"
        assert audit_log(conn, "correlation_id", action="definition.invalidated", target=definition_id) == [(rid,)]
    finally:
        restored = quiet.patch(f"{ENTITIES}/{entity['entity_id']}", json={"allowed_fields": current["allowed_fields"]},
                               headers=admin)
    assert restored.status_code == 200
    assert quiet.get(one, headers=analyst).json()["validation_status"] == "valid"
    assert audit_log(conn, "outcome", action="definition.revalidated", target=definition_id) == [("succeeded",)]

    # deprecating the entity leaves none of its fields usable: every one the definition uses is named
    entity_url = f"{ENTITIES}/{entity['entity_id']}"
    assert quiet.post(f"{entity_url}/deprecate", json={"reason_code": "POLICY_CHANGE"}, headers=admin).status_code == 200
    try:
        shown = quiet.get(one, headers=analyst).json()
        assert shown["invalid_fields"] == sorted(f"{n}.{f}" for f in ("day", "severity", "incidents_resolved"))
        assert f"entities not active: {n}" in shown["invalid_reason"]
    finally:
        assert quiet.post(f"{entity_url}/activate", headers=admin).status_code == 200
    assert quiet.get(one, headers=analyst).json()["validation_status"] == "valid"


def test_a_role_change_of_its_owner_marks_a_definition_invalid_at_once(quiet, token_for, entity, conn):
    """A policy change (the owner's roles) re-validates the owner's definitions in the same transaction."""
    from orchestration.services import principals

    owner = f"owner-{uuid.uuid4().hex[:8]}@acme.example"
    principals.add(conn, owner, roles=["analyst"], tenants=["acme"], actor=PLATFORM)
    n = entity["entity_name"]
    body = _by_severity(entity, aggregates=[{"function": "sum", "field": f"{n}.incidents_resolved", "alias": "resolved"}])
    created = quiet.post(DEFS, json=body, headers=auth(token_for(owner)))
    assert created.status_code == 201, created.text
    one = f"{DEFS}/{created.json()['report_definition_id']}"
    # a viewer is cleared for internal fields only; incidents_resolved is confidential
    principals.update(conn, owner, roles=["viewer"], actor=PLATFORM)
    shown = quiet.get(one, headers=auth(token_for(owner))).json()
    assert shown["validation_status"] == "invalid" and shown["invalid_fields"] == [f"{n}.incidents_resolved"]
    assert "classified confidential" in shown["invalid_reason"]
    ((details,),) = audit_log(conn, "details", action="definition.invalidated", target=created.json()["report_definition_id"])
    assert details["cause"] == f"principal.update {owner}"
    principals.update(conn, owner, roles=["analyst"], actor=PLATFORM)
    assert quiet.get(one, headers=auth(token_for(owner))).json()["validation_status"] == "valid"
