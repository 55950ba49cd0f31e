"""/charts/definitions over real HTTP: save, validate axes, activate by a second person, render
with numbers recomputed from raw tables (consent-withdrawn subjects left out), the SVG as XML,
drift when the source definition gets a new version, tenants that never see each other's charts,
and the audit rows of every step."""

from __future__ import annotations

import io
import uuid
import xml.etree.ElementTree as ET

import PIL.Image
import pytest

from .conftest import ENTITIES, auth

DEFS, CHARTS = "/reports/definitions", "/charts/definitions"
ANALYST, APPROVER, GLOBEX = "analyst@acme.example", "approver@nexus.example", "analyst@globex.example"
JUNE = {"date_from": "2026-06-01", "date_to": "2026-06-30"}
SVG_NS = "{http://www.w3.org/2000/svg}"


def _raw(conn, sql: str, params=()) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _save_active_definition(client, token_for, body: dict) -> str:
    created = client.post(DEFS, json=body, headers=auth(token_for(ANALYST)))
    assert created.status_code == 201, created.text
    definition_id = created.json()["report_definition_id"]
    activated = client.post(f"{DEFS}/{definition_id}/activate", headers=auth(token_for(APPROVER)))
    assert activated.status_code == 200, activated.text
    return definition_id


@pytest.fixture(scope="module")
def opened_by_severity(client_module, token_for, entity):
    n = entity["entity_name"]
    return _save_active_definition(client_module, token_for, {
        "report_name": "Opened by severity", "entity_ids": [entity["entity_id"]], "fields": [f"{n}.severity"],
        "group_by": [f"{n}.severity"], "sort": [{"field": f"{n}.severity"}], "time_window": {"field": f"{n}.day"},
        "aggregates": [{"function": "sum", "field": f"{n}.incidents_opened", "alias": "opened"}]})


def _chart(definition_id: str, **over) -> dict:
    return {"chart_name": "Opened incidents", "source_report_definition_id": definition_id, "chart_type": "bar",
            "x_axis": "severity", "y_axis": ["opened"], **over}


def _audit(conn, chart_id: str) -> list[tuple]:
    return _raw(conn, "select action, outcome, correlation_id from control.audit_log where target = %s order by seq",
                (chart_id,))


def test_create_activate_render_drift_and_reactivate(client, token_for, entity, opened_by_severity, conn):
    analyst, approver = auth(token_for(ANALYST)), auth(token_for(APPROVER))
    bad = client.post(CHARTS, json=_chart(opened_by_severity, x_axis="priority"), headers=analyst)
    assert bad.status_code == 422 and "x_axis 'priority'" in bad.json()["detail"], bad.text
    not_a_number = client.post(CHARTS, json=_chart(opened_by_severity, y_axis=["severity"], x_axis="opened"),
                               headers=analyst)
    assert not_a_number.status_code == 422 and "y_axis 'severity'" in not_a_number.json()["detail"]

    created = client.post(CHARTS, json=_chart(opened_by_severity), headers={**analyst, "X-Request-ID": "chart-create-1"})
    assert created.status_code == 201, created.text
    chart = created.json()
    assert (chart["status"], chart["version_id"], chart["active_version_id"]) == ("draft", 1, None)
    one = f"{CHARTS}/{chart['chart_id']}"
    assert client.post(f"{one}/render", json={}, headers=analyst).status_code == 409  # a draft does not render
    assert client.post(f"{one}/activate", headers=analyst).status_code == 403  # not an approver
    assert client.post(f"{one}/activate", headers=approver).json()["status"] == "active"

    rendered = client.post(f"{one}/render", json={"parameters": JUNE}, headers={**analyst, "X-Request-ID": "chart-r-1"})
    assert rendered.status_code == 200, rendered.text
    body = rendered.json()
    expected = dict(_raw(conn, "select severity, count(*) from raw.incidents where tenant_id = 'acme' and opened_at "
                               ">= '2026-06-01T00:00Z' and opened_at < '2026-07-01T00:00Z' group by 1"))
    data = body["chart_data"]
    assert [s["name"] for s in data["series"]] == ["opened"] and expected
    assert dict(zip(data["categories"], data["series"][0]["values"], strict=True)) == expected
    svg = ET.fromstring(body["svg"])
    assert svg.tag == f"{SVG_NS}svg" and len(svg.findall(f"{SVG_NS}rect")) >= len(expected)
    as_svg = client.post(f"{one}/render", params={"format": "svg"}, json={"parameters": JUNE}, headers=analyst)
    assert as_svg.headers["content-type"].startswith("image/svg+xml") and ET.fromstring(as_svg.content) is not None
    png = client.post(f"{one}/render", json={"parameters": JUNE}, headers={**analyst, "Accept": "image/png"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    with PIL.Image.open(io.BytesIO(png.content)) as image:  # a real PNG reader, twice the SVG's width
        assert image.format == "PNG" and image.width == 2 * int(float(svg.get("width")))

    # the source definition gets a new version: the chart drifts and refuses to render
    patched = client.patch(f"{DEFS}/{opened_by_severity}", json={"report_name": "Opened, renamed"}, headers=analyst)
    assert patched.status_code == 200 and patched.json()["version_id"] == 2
    shown = client.get(one, headers=analyst).json()
    assert shown["status"] == "drift" and "new version v2" in shown["drift_reason"], shown
    refused = client.post(f"{one}/render", json={"parameters": JUNE}, headers=analyst)
    assert refused.status_code == 409 and "new version v2" in refused.json()["detail"]
    assert client.post(f"{one}/activate", headers=approver).status_code == 409  # not re-validated yet

    assert client.post(f"{DEFS}/{opened_by_severity}/activate", headers=approver).status_code == 200
    validated = client.post(f"{one}/validate", headers=analyst).json()
    assert validated["validation_status"] == "valid" and validated["chart"]["version_id"] == 2
    assert validated["chart"]["source_version"] == 2
    reactivated = client.post(f"{one}/activate", headers=approver).json()
    assert (reactivated["status"], reactivated["active_version_id"], reactivated["drift_reason"]) == ("active", 2, None)
    again = client.post(f"{one}/render", json={"parameters": JUNE}, headers=analyst).json()
    assert again["version_id"] == 2 and again["chart_data"] == data

    # PATCH makes a new version (If-Match honoured); pie draws the same numbers
    etag = client.get(one, headers=analyst).headers["ETag"]
    assert client.patch(one, json={"chart_type": "pie"}, headers={**analyst, "If-Match": '"stale.v1"'}).status_code == 412
    pie = client.patch(one, json={"chart_type": "pie"}, headers={**analyst, "If-Match": etag})
    assert pie.status_code == 200 and pie.json()["version_id"] == 3

    actions = _audit(conn, chart["chart_id"])
    assert ("chart.create", "succeeded", "chart-create-1") in actions
    assert ("chart.render", "succeeded", "chart-r-1") in actions
    assert {"chart.activate", "chart.export", "chart.validate", "chart.update"} <= {a for a, _, _ in actions}
    assert [a for a, o, _ in actions if o == "failed"].count("chart.render") >= 2  # draft, drift


def test_another_tenants_chart_is_404(client, token_for, opened_by_severity):
    analyst, globex = auth(token_for(ANALYST)), auth(token_for(GLOBEX))
    chart = client.post(CHARTS, json=_chart(opened_by_severity, chart_type="line"), headers=analyst).json()
    one = f"{CHARTS}/{chart['chart_id']}"
    assert client.get(one, headers=globex).status_code == 404
    assert client.post(f"{one}/render", json={}, headers=globex).status_code == 404
    assert client.patch(one, json={"chart_type": "area"}, headers=globex).status_code == 404
    assert chart["chart_id"] not in {c["chart_id"] for c in client.get(CHARTS, headers=globex).json()["items"]}
    # nor can a chart be made over another tenant's definition
    theirs = client.post(CHARTS, json=_chart(opened_by_severity), headers=globex)
    assert theirs.status_code in (404, 422) and opened_by_severity in theirs.json()["detail"]


def test_withdrawn_subjects_are_not_in_the_chart(client, token_for, conn):
    admin = auth(token_for("platform@nexus.example"))
    entity = {"entity_name": f"aware_{uuid.uuid4().hex[:6]}",
              "data_source": {"model": "awareness_measurements", "version": 1}, "classification": "internal",
              "allowed_fields": [{"name": "tenant_id", "type": "text"}, {"name": "measurement_id", "type": "bigint"},
                                 {"name": "score", "type": "numeric", "aggregatable": True},
                                 {"name": "measurement_type", "type": "text"}]}
    created = client.post(ENTITIES, json=entity, headers=admin).json()
    entity = client.post(f"{ENTITIES}/{created['entity_id']}/activate", headers=admin).json()
    n = entity["entity_name"]
    definition_id = _save_active_definition(client, token_for, {
        "report_name": "Awareness by measurement", "entity_ids": [entity["entity_id"]],
        "fields": [f"{n}.measurement_type"], "group_by": [f"{n}.measurement_type"],
        "sort": [{"field": f"{n}.measurement_type"}],
        "aggregates": [{"function": "count", "field": f"{n}.measurement_id", "alias": "measurements"},
                       {"function": "sum", "field": f"{n}.score", "alias": "score_sum"}]})
    analyst = auth(token_for(ANALYST))
    chart = client.post(CHARTS, json={"chart_name": "Awareness", "source_report_definition_id": definition_id,
                                      "chart_type": "stacked_bar", "x_axis": "measurement_type",
                                      "y_axis": ["measurements", "score_sum"]}, headers=analyst).json()
    assert client.post(f"{CHARTS}/{chart['chart_id']}/activate",
                       headers=auth(token_for(APPROVER))).status_code == 200
    data = client.post(f"{CHARTS}/{chart['chart_id']}/render", json={}, headers=analyst).json()["chart_data"]

    withdrawn = [r[0] for r in _raw(conn, """
        with latest as (select distinct on (subject_id) subject_id, state from raw.consent_events
                        where tenant_id = 'acme' order by subject_id, changed_at desc, event_id desc)
        select subject_id from latest where state = 'withdrawn'""")]
    consenting = _raw(conn, "select measurement_type, count(*), sum(score) from raw.awareness_measurements "
                            "where tenant_id = 'acme' and not (subject_id = any(%s)) group by 1 order by 1",
                      (withdrawn,))
    everyone = _raw(conn, "select count(*) from raw.awareness_measurements where tenant_id = 'acme'")[0][0]
    assert withdrawn and sum(r[1] for r in consenting) < everyone
    series = {s["name"]: s["values"] for s in data["series"]}
    assert data["categories"] == [r[0] for r in consenting]
    assert series["measurements"] == [r[1] for r in consenting]
    assert series["score_sum"] == pytest.approx([float(r[2]) for r in consenting])


def test_a_template_sections_chart_renders_its_numbers(client, token_for, conn):
    analyst, approver = auth(token_for(ANALYST)), auth(token_for(APPROVER))
    bad = client.post(CHARTS, json={"chart_name": "By severity", "source_template_id": "incident_summary",
                                    "chart_type": "bar", "x_axis": "severity", "y_axis": ["incidents_lost"]},
                      headers=analyst)
    assert bad.status_code == 422 and "y_axis 'incidents_lost'" in bad.json()["detail"]
    created = client.post(CHARTS, json={"chart_name": "By severity", "source_template_id": "incident_summary",
                                        "chart_type": "bar", "x_axis": "summary_by_severity.severity",
                                        "y_axis": ["incidents_opened"]}, headers=analyst)
    assert created.status_code == 201, created.text
    one = f"{CHARTS}/{created.json()['chart_id']}"
    assert client.post(f"{one}/activate", headers=approver).status_code == 200
    rendered = client.post(f"{one}/render", json={"parameters": JUNE}, headers=analyst)
    assert rendered.status_code == 200, rendered.text
    data = rendered.json()["chart_data"]
    expected = dict(_raw(conn, "select severity, count(*) from raw.incidents where tenant_id = 'acme' and opened_at "
                               ">= '2026-06-01T00:00Z' and opened_at < '2026-07-01T00:00Z' group by 1"))
    drawn = dict(zip(data["categories"], data["series"][0]["values"], strict=True))
    assert {k: v for k, v in drawn.items() if v} == expected and data["series"][0]["name"] == "Opened"
    ET.fromstring(rendered.json()["svg"])
    assert client.post(f"{one}/render", json={}, headers=auth(token_for(GLOBEX))).status_code == 404


def test_a_field_restricted_in_the_registry_drifts_the_chart(client, token_for, entity):
    analyst, admin = auth(token_for(ANALYST)), auth(token_for("platform@nexus.example"))
    n = entity["entity_name"]
    definition_id = _save_active_definition(client, token_for, {
        "report_name": "Resolved by severity", "entity_ids": [entity["entity_id"]], "fields": [f"{n}.severity"],
        "group_by": [f"{n}.severity"], "time_window": {"field": f"{n}.day"},
        "aggregates": [{"function": "sum", "field": f"{n}.incidents_resolved", "alias": "resolved"}]})
    chart = client.post(CHARTS, json=_chart(definition_id, y_axis=["resolved"]), headers=analyst).json()
    one = f"{CHARTS}/{chart['chart_id']}"
    assert client.post(f"{one}/activate", headers=auth(token_for(APPROVER))).status_code == 200
    assert client.post(f"{one}/render", json={"parameters": JUNE}, headers=analyst).status_code == 200
    current = client.get(f"{ENTITIES}/{entity['entity_id']}", headers=admin).json()
    fields = [dict(f, classification="restricted") if f["name"] == "incidents_resolved" else f
              for f in current["allowed_fields"]]
    assert client.patch(f"{ENTITIES}/{entity['entity_id']}", json={"allowed_fields": fields}, headers=admin).status_code == 200
    try:
        shown = client.get(one, headers=analyst).json()
        assert shown["status"] == "drift" and "classified restricted" in shown["drift_reason"], shown
        refused = client.post(f"{one}/render", json={"parameters": JUNE}, headers=analyst)
        assert refused.status_code == 409 and "classified restricted" in refused.json()["detail"]
        invalid = client.post(f"{one}/validate", headers=analyst).json()
        assert invalid["validation_status"] == "invalid" and invalid["chart"]["version_id"] == 1
    finally:
        client.patch(f"{ENTITIES}/{entity['entity_id']}", json={"allowed_fields": current["allowed_fields"]}, headers=admin)
