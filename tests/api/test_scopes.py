"""Consent, verticals and regions over real HTTP, numbers recomputed from raw data: a withdrawn
subject's rows are in no preview, run or file, aggregates included; only root includes them,
for a reason that is audited; a principal with two of a programme's three verticals gets
exactly the intersection; a principal outside a region never sees its rows."""

from __future__ import annotations

import csv
import io
import time
import uuid

import httpx
import pytest

from tests.helpers import principals

from .conftest import ENTITIES, auth

DEFS, RUNS = "/reports/definitions", "/reports/runs"
ROOT, TWO, EAST = "root-test@nexus.example", "two-verticals@acme.example", "one-region@acme.example"
LATEST_CONSENT = """
    with latest as (
        select distinct on (subject_id) subject_id, state from raw.consent_events where tenant_id = 'acme'
        order by subject_id, changed_at desc, event_id desc)
    select subject_id from latest where state = 'withdrawn'"""


def _withdrawn(conn) -> set[str]:
    with conn, conn.cursor() as cur:
        cur.execute(LATEST_CONSENT)
        return {r[0] for r in cur.fetchall()}


def _raw(conn, sql: str, params=()) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


@pytest.fixture(scope="module")
def scoped(built):
    """acme's verticals and regions, and principals holding part of them (made here, as fixtures)."""
    from orchestration.db import warehouse

    with warehouse.connection() as conn:
        return _principals(conn)


def _principals(conn) -> tuple[list[str], list[str]]:
    verticals = [r[0] for r in _raw(conn, "select distinct vertical from raw.incidents where tenant_id = 'acme' order by 1")]
    regions = [r[0] for r in _raw(conn, "select distinct region from raw.incidents where tenant_id = 'acme' order by 1")]
    assert len(verticals) >= 3 and len(regions) >= 2, (verticals, regions)
    principals.upsert_principal(conn, ROOT, roles=["root"], tenants=["*"], actor="test")
    principals.upsert_principal(conn, TWO, roles=["analyst"], tenants=["acme"], verticals=verticals[:2], actor="test")
    principals.upsert_principal(conn, EAST, roles=["analyst"], tenants=["acme"], regions=regions[:1], actor="test")
    return verticals, regions


def _entity(client, token_for, model: str, fields: list[dict]) -> dict:
    admin = auth(token_for("platform@nexus.example"))
    body = {"entity_name": f"{model[:12]}_{uuid.uuid4().hex[:6]}", "data_source": {"model": model, "version": 1},
            "classification": "internal", "allowed_fields": [{"name": "tenant_id", "type": "text"}, *fields]}
    created = client.post(ENTITIES, json=body, headers=admin)
    assert created.status_code == 201, created.text
    return client.post(f"{ENTITIES}/{created.json()['entity_id']}/activate", headers=admin).json()


@pytest.fixture(scope="module")
def awareness(client_module, token_for, scoped):
    return _entity(client_module, token_for, "awareness_measurements", [
        {"name": "measurement_id", "type": "bigint"}, {"name": "score", "type": "numeric", "aggregatable": True},
        {"name": "measurement_type", "type": "text"}, {"name": "vertical", "type": "text"}])


@pytest.fixture(scope="module")
def incidents(client_module, token_for, scoped):
    return _entity(client_module, token_for, "incidents", [
        {"name": "incident_id", "type": "bigint"}, {"name": "severity", "type": "text"},
        {"name": "vertical", "type": "text"}, {"name": "region", "type": "text"},
        {"name": "opened_at", "type": "timestamptz"}, {"name": "suspension_status", "type": "text"}])


def _save(client, token: str, body: dict) -> str:
    created = client.post(DEFS, json=body, headers=auth(token))
    assert created.status_code == 201, created.text
    return created.json()["report_definition_id"]


def _totals(entity: dict) -> dict:
    n = entity["entity_name"]
    return {"report_name": "Awareness totals", "entity_ids": [entity["entity_id"]],
            "aggregates": [{"function": "count", "field": f"{n}.measurement_id", "alias": "measurements"},
                           {"function": "sum", "field": f"{n}.score", "alias": "score_sum"}]}


def test_withdrawn_subjects_are_out_of_aggregates_and_only_root_brings_them_back(client, token_for, awareness, conn):
    withdrawn = _withdrawn(conn)
    assert withdrawn, "the sample data has subjects whose latest consent is withdrawn"
    everyone = _raw(conn, "select count(*), sum(score) from raw.awareness_measurements where tenant_id = 'acme'")[0]
    consenting = _raw(conn, "select count(*), sum(score) from raw.awareness_measurements where tenant_id = 'acme' "
                            "and not (subject_id = any(%s))", (sorted(withdrawn),))[0]
    assert consenting[0] < everyone[0]
    one = f"{DEFS}/{_save(client, token_for('analyst@acme.example'), _totals(awareness))}"

    analyst = client.post(f"{one}/preview", json={}, headers=auth(token_for("analyst@acme.example"))).json()
    assert analyst["preview_rows"][0] == [consenting[0], float(consenting[1])]

    reason = {"reason_code": "REGULATORY_REQUEST", "reason_text": "case 42"}
    root = client.post(f"{one}/preview", json={"include_withdrawn": reason},
                       headers={**auth(token_for(ROOT)), "X-Request-ID": "consent-root-1"})
    assert root.status_code == 200, root.text
    assert root.json()["preview_rows"][0] == [everyone[0], float(everyone[1])]
    logged = _raw(conn, "select actor, details from control.audit_log where action = 'consent.override' "
                        "and correlation_id = 'consent-root-1'")
    assert logged == [(ROOT, reason)]

    assert client.post(f"{one}/preview", json={"include_withdrawn": {}},
                       headers=auth(token_for(ROOT))).status_code == 422  # no reason, no override
    assert client.post(f"{one}/preview", json={"include_withdrawn": {"reason_code": "OTHER"}},
                       headers=auth(token_for(ROOT))).status_code == 422  # OTHER needs its text
    refused = client.post(f"{one}/preview", json={"include_withdrawn": reason},
                          headers=auth(token_for("tenant_admin@acme.example")))
    assert refused.status_code == 403
    admin = client.post(f"{one}/preview", json={"include_withdrawn": reason},
                        headers=auth(token_for("platform@nexus.example")))
    assert admin.status_code == 403  # administering the platform does not grant it


def test_two_of_three_verticals_get_exactly_the_intersection(client, token_for, incidents, scoped, conn):
    verticals, _ = scoped
    n = incidents["entity_name"]
    body = {"report_name": "Incidents per vertical", "entity_ids": [incidents["entity_id"]],
            "fields": [f"{n}.vertical"], "group_by": [f"{n}.vertical"], "vertical_scope": verticals[:3],
            "aggregates": [{"function": "count", "field": f"{n}.incident_id", "alias": "incidents"}],
            "sort": [{"field": f"{n}.vertical"}]}
    one = f"{DEFS}/{_save(client, token_for('tenant_admin@acme.example'), body)}"
    rows = client.post(f"{one}/preview", json={}, headers=auth(token_for(TWO))).json()["preview_rows"]
    expected = _raw(conn, "select vertical, count(*) from raw.incidents where tenant_id = 'acme' "
                          "and vertical = any(%s) and (subject_id is null or not (subject_id = any(%s))) "
                          "group by 1 order by 1", (verticals[:2], sorted(_withdrawn(conn))))
    assert [tuple(r) for r in rows] == expected and len(expected) == 2
    full = client.post(f"{one}/preview", json={}, headers=auth(token_for("analyst@acme.example"))).json()
    assert [r[0] for r in full["preview_rows"]] == verticals[:3]


def test_outside_a_region_nothing_shows_in_previews_runs_or_files(client, token_for, incidents, scoped, conn):
    _, regions = scoped
    n = incidents["entity_name"]
    body = {"report_name": "Incidents per region", "entity_ids": [incidents["entity_id"]],
            "fields": [f"{n}.region", f"{n}.severity"], "group_by": [f"{n}.region", f"{n}.severity"],
            "aggregates": [{"function": "count", "field": f"{n}.incident_id", "alias": "incidents"}],
            "sort": [{"field": f"{n}.region"}, {"field": f"{n}.severity"}], "time_window": {"field": f"{n}.opened_at"}}
    definition_id = _save(client, token_for("analyst@acme.example"), body)
    assert client.post(f"{DEFS}/{definition_id}/activate",
                       headers=auth(token_for("approver@nexus.example"))).status_code == 200
    east = auth(token_for(EAST))
    june = {"date_from": "2026-06-01", "date_to": "2026-06-30"}
    preview = client.post(f"{DEFS}/{definition_id}/preview", json={"parameters": june}, headers=east).json()
    expected = _raw(conn, "select region, severity, count(*) from raw.incidents where tenant_id = 'acme' "
                          "and region = %s and (subject_id is null or not (subject_id = any(%s))) "
                          "and opened_at >= '2026-06-01T00:00Z' and opened_at < '2026-07-01T00:00Z' "
                          "group by 1, 2 order by 1, 2", (regions[0], sorted(_withdrawn(conn))))
    assert [tuple(r) for r in preview["preview_rows"]] == expected and expected

    run = client.post(f"{DEFS}/{definition_id}/run", json={"format": "csv", "parameters": june}, headers=east).json()
    deadline = time.monotonic() + 180
    while (status := client.get(f"{RUNS}/{run['run_id']}", headers=east).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["status"] == "completed", status
    link = client.get(f"{RUNS}/{run['run_id']}/download", params={"format": "csv"}, headers=east).json()
    rows = list(csv.DictReader(io.StringIO(httpx.get(link["download_url"], timeout=30).content.decode("utf-8-sig"))))
    assert [(r["region"], r["severity"], int(r["incidents"])) for r in rows] == expected
    assert {r["tenant_id"] for r in rows} == {"acme"}
    # the run's Gate B probed the model under the run's scope and found nothing outside it
    gate = _raw(conn, "select gate_summary from control.report_runs where run_id = %s", (run["run_id"],))[0][0]
    assert gate["passed"] is True and gate["evaluated"] >= 4
    # the file was made for its requester's scope: nobody else gets a link to it
    other = client.get(f"{RUNS}/{run['run_id']}/download", params={"format": "csv"},
                       headers=auth(token_for("analyst@acme.example")))
    assert other.status_code == 403 and "requester's only" in other.json()["detail"]
    assert client.get(f"{RUNS}/{run['run_id']}", headers=auth(token_for("analyst@acme.example"))).status_code == 403
