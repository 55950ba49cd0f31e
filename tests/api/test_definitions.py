"""/reports/definitions over real HTTP: save, validate, preview, activate by a second person,
new versions, registry changes that invalidate, tenants that never see each other's ids."""

from __future__ import annotations

import pytest

from .conftest import auth

ENTITIES, DEFS = "/reporting/registry/entities", "/reports/definitions"
PLATFORM, APPROVER = "platform@nexus.example", "approver@nexus.example"
JUNE = {"date_from": "2026-06-01", "date_to": "2026-06-30"}


def _by_severity(entity, **over) -> dict:
    n = entity["entity_name"]
    body = {
        "report_name": "Opened incidents by severity",
        "entity_ids": [entity["entity_id"]],
        "fields": [f"{n}.severity"],
        "group_by": [f"{n}.severity"],
        "aggregates": [{"function": "sum", "field": f"{n}.incidents_opened", "alias": "opened"}],
        "sort": [{"field": f"{n}.severity", "direction": "asc"}],
        "time_window": {"field": f"{n}.day"},
    }
    body.update(over)
    return body


def _raw_opened(conn, tenant: str) -> dict[str, int]:
    with conn, conn.cursor() as cur:
        cur.execute("""select severity, count(*) from raw.incidents where tenant_id = %s
                       and opened_at >= '2026-06-01T00:00Z' and opened_at < '2026-07-01T00:00Z' group by severity""", (tenant,))
        return dict(cur.fetchall())


def test_save_validate_preview_activate(client, token_for, entity, conn):
    analyst = auth(token_for("analyst@acme.example"))
    created = client.post(DEFS, json=_by_severity(entity), headers=analyst)
    assert created.status_code == 201, created.text
    d = created.json()
    assert (d["status"], d["version_id"], d["active_version_id"]) == ("draft", 1, None)
    assert d["security_context"]["tenant_id"] == "acme" and len(d["validation_hash"]) == 64
    one = f"{DEFS}/{d['report_definition_id']}"

    valid = client.post(f"{one}/validate", headers=analyst).json()
    assert valid == {"validation_status": "valid", "validation_hash": d["validation_hash"], "errors": []}

    preview = client.post(f"{one}/preview", json={"parameters": JUNE}, headers=analyst)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert [c["name"] for c in body["columns"]] == ["severity", "opened"] and body["truncated"] is False
    assert {row[0]: row[1] for row in body["preview_rows"]} == _raw_opened(conn, "acme")

    assert client.post(f"{one}/activate", headers=analyst).status_code == 403  # not an approver
    activated = client.post(f"{one}/activate", headers=auth(token_for(APPROVER)))
    assert activated.status_code == 200 and activated.json()["status"] == "active"
    assert activated.json()["active_version_id"] == 1


def test_activation_needs_a_second_person_with_the_approver_role(client, token_for, entity):
    approver = auth(token_for(APPROVER))
    assert client.post(DEFS, json=_by_severity(entity, tenant_id="acme"), headers=approver).status_code == 403
    manager = auth(token_for("manager@acme.example"))
    theirs = client.post(DEFS, json=_by_severity(entity), headers=manager).json()
    assert client.post(f"{DEFS}/{theirs['report_definition_id']}/activate", headers=manager).status_code == 403
    # a platform admin may define and approve, but never its own version
    admin = auth(token_for(PLATFORM))
    own = client.post(DEFS, json=_by_severity(entity, tenant_id="acme"), headers=admin).json()
    refused = client.post(f"{DEFS}/{own['report_definition_id']}/activate", headers=admin)
    assert refused.status_code == 403 and "needs a second person" in refused.json()["detail"]
    assert client.post(f"{DEFS}/{own['report_definition_id']}/activate", headers=approver).status_code == 200


def test_patch_is_a_new_version_and_the_old_one_stays_readable(client, token_for, entity):
    analyst = auth(token_for("analyst@acme.example"))
    created = client.post(DEFS, json=_by_severity(entity), headers=analyst)
    one, etag = f"{DEFS}/{created.json()['report_definition_id']}", created.headers["etag"]
    client.post(f"{one}/activate", headers=auth(token_for(APPROVER)))
    patched = client.patch(one, json={"report_name": "Renamed"}, headers={**analyst, "If-Match": etag})
    assert patched.status_code == 200
    assert (patched.json()["version_id"], patched.json()["active_version_id"]) == (2, 1)
    assert client.get(f"{one}?version=1", headers=analyst).json()["report_name"] == "Opened incidents by severity"
    assert client.get(one, headers=analyst).json()["report_name"] == "Renamed"
    stale = client.patch(one, json={"report_name": "Again"}, headers={**analyst, "If-Match": etag})
    assert stale.status_code == 412
    assert client.get(f"{one}?version=3", headers=analyst).status_code == 404


def test_a_registry_change_invalidates_and_preview_fails_closed(client, token_for, entity):
    analyst, admin = auth(token_for("analyst@acme.example")), auth(token_for(PLATFORM))
    n = entity["entity_name"]
    created = client.post(DEFS, json=_by_severity(
        entity, aggregates=[{"function": "sum", "field": f"{n}.incidents_resolved", "alias": "resolved"}]), headers=analyst)
    assert created.status_code == 201, created.text
    one = f"{DEFS}/{created.json()['report_definition_id']}"
    assert client.post(f"{one}/preview", json={"parameters": JUNE}, headers=analyst).status_code == 200
    current = client.get(f"{ENTITIES}/{entity['entity_id']}", headers=admin).json()
    fields = [dict(f, classification="restricted") if f["name"] == "incidents_resolved" else f
              for f in current["allowed_fields"]]
    assert client.patch(f"{ENTITIES}/{entity['entity_id']}", json={"allowed_fields": fields}, headers=admin).status_code == 200
    try:
        result = client.post(f"{one}/validate", headers=analyst).json()
        assert result["validation_status"] == "invalid"
        assert any("classified restricted" in e for e in result["errors"])
        refused = client.post(f"{one}/preview", json={"parameters": JUNE}, headers=analyst)
        assert refused.status_code == 409 and "not valid now" in refused.json()["detail"]
    finally:
        client.patch(f"{ENTITIES}/{entity['entity_id']}", json={"allowed_fields": current["allowed_fields"]}, headers=admin)


def test_another_tenants_definition_is_404_everywhere(client, token_for, entity):
    created = client.post(DEFS, json=_by_severity(entity), headers=auth(token_for("analyst@acme.example"))).json()
    one = f"{DEFS}/{created['report_definition_id']}"
    missing = f"{DEFS}/rdef_0000000000000000"
    globex = auth(token_for("analyst@globex.example"))
    for method, suffix, body in (("GET", "", None), ("PATCH", "", {"report_name": "x"}), ("POST", "/validate", None),
                                 ("POST", "/preview", {}), ("POST", "/activate", None),
                                 ("POST", "/archive", {"reason_code": "SUPERSEDED"})):
        theirs = client.request(method, one + suffix, json=body, headers=globex)
        unknown = client.request(method, missing + suffix, json=body, headers=globex)
        assert theirs.status_code == unknown.status_code == 404, (method, suffix, theirs.text)
    listed = client.get(DEFS, headers=globex).json()["items"]
    assert created["report_definition_id"] not in {d["report_definition_id"] for d in listed}
    assert client.post(DEFS, json=_by_severity(entity, tenant_id="acme"), headers=globex).status_code == 404


def test_rows_need_permission_and_previews_are_bounded(client, token_for, entity):
    n = entity["entity_name"]
    rows = _by_severity(entity, fields=[f"{n}.day", f"{n}.severity", f"{n}.incidents_opened"], group_by=[], aggregates=[],
                        sort=[{"field": f"{n}.day", "direction": "desc"}])
    viewer = client.post(DEFS, json=rows, headers=auth(token_for("manager@acme.example")))
    assert viewer.status_code == 422 and "report_rows permission" in viewer.json()["detail"]
    analyst = auth(token_for("analyst@acme.example"))
    created = client.post(DEFS, json=rows, headers=analyst).json()
    one = f"{DEFS}/{created['report_definition_id']}"
    preview = client.post(f"{one}/preview", json={"parameters": JUNE, "row_limit": 5}, headers=analyst).json()
    assert len(preview["preview_rows"]) == 5 and preview["truncated"] is True
    assert all("2026-06-01" <= r[0] <= "2026-06-30" for r in preview["preview_rows"])
    assert client.post(f"{one}/preview", json={"row_limit": 1001}, headers=analyst).status_code == 422
    backwards = {"parameters": {"date_from": "2026-06-30", "date_to": "2026-06-01"}}
    assert client.post(f"{one}/preview", json=backwards, headers=analyst).status_code == 422


@pytest.mark.parametrize("change", [
    {"fields": ["x.severity; drop table control.audit_log"]},
    {"sort": [{"field": "x.severity", "direction": "sideways"}]},
    {"aggregates": [{"function": "count", "field": "x.severity", "alias": "n\" from pg_shadow --"}]},
    {"filters": [{"field": "x.severity", "op": "eq", "value": "a\u0000b"}]},
    {"sql": "select * from raw.incidents"},
])
def test_injection_attempts_are_422(client, token_for, entity, change):
    resp = client.post(DEFS, json=_by_severity(entity, **change), headers=auth(token_for("analyst@acme.example")))
    assert resp.status_code == 422, resp.text
