"""/reporting/registry/entities over real HTTP: who sees and changes what, checked against the
dbt manifest, versioned with ETags, paginated, audited."""

from __future__ import annotations

import uuid

import pytest

from .conftest import auth

ENTITIES = "/reporting/registry/entities"
PLATFORM = "platform@nexus.example"


def _body(name: str, **over) -> dict:
    body = {
        "entity_name": name,
        "data_source": {"model": "metric_incident_flow", "version": 1},
        "allowed_fields": [
            {"name": "tenant_id", "type": "text", "filterable": True, "groupable": True},
            {"name": "day", "type": "date"},
            {"name": "severity", "type": "text"},
            {"name": "incidents_opened", "type": "bigint", "aggregatable": True, "groupable": False},
        ],
        "classification": "internal",
        "vertical_scope": [],
    }
    body.update(over)
    return body


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def columns(built):
    from orchestration.registry import sources
    from orchestration.registry.entities import DataSource

    return sources.model_columns(DataSource(model="metric_incident_flow", version=1))


def _create(client, token: str, body: dict, status: int = 201) -> dict:
    resp = client.post(ENTITIES, json=body, headers=auth(token))
    assert resp.status_code == status, resp.text
    return resp.json()


def test_fields_used_in_these_tests_are_real_columns(columns):
    assert {"tenant_id", "day", "severity", "incidents_opened"} <= set(columns)


def test_a_system_entry_is_a_draft_seen_by_admins_until_activated(client, token_for):
    admin, analyst = token_for(PLATFORM), token_for("analyst@acme.example")
    resp = client.post(ENTITIES, json=_body(_name("flow")), headers=auth(admin))
    assert resp.status_code == 201
    entity = resp.json()
    assert entity["status"] == "draft" and entity["tenant_id"] is None and entity["version"] == 1
    assert resp.headers["etag"] == f'"{entity["entity_id"]}.v1"'
    assert resp.headers["location"] == f"{ENTITIES}/{entity['entity_id']}"
    one = f"{ENTITIES}/{entity['entity_id']}"
    assert client.get(one, headers=auth(analyst)).status_code == 404
    assert entity["entity_id"] not in {e["entity_id"] for e in client.get(ENTITIES, headers=auth(analyst)).json()["items"]}

    activated = client.post(f"{one}/activate", headers=auth(admin))
    assert activated.status_code == 200 and activated.json()["status"] == "active" and activated.json()["activated_at"]
    seen = client.get(one, headers=auth(analyst))
    assert seen.status_code == 200 and seen.headers["etag"] == f'"{entity["entity_id"]}.v2"'


@pytest.mark.parametrize(("change", "message"), [
    ({"data_source": {"model": "stg_incidents"}}, "only analytics models are reportable"),
    ({"data_source": {"model": "no_such_model"}}, "not in the dbt manifest"),
    ({"allowed_fields": [{"name": "tenant_id", "type": "text"}, {"name": "password", "type": "text"}]},
     "password is not a column of metric_incident_flow"),
    ({"allowed_fields": [{"name": "tenant_id", "type": "text"}, {"name": "day", "type": "integer"}]},
     "day is date in metric_incident_flow, not integer"),
])
def test_sources_and_fields_are_checked_against_the_dbt_manifest(client, token_for, change, message):
    resp = client.post(ENTITIES, json=_body(_name("bad"), **change), headers=auth(token_for(PLATFORM)))
    assert resp.status_code == 422 and resp.headers["content-type"].startswith("application/problem+json")
    assert message in resp.json()["detail"]


@pytest.mark.parametrize("change", [
    {"entity_name": "incidents; drop table x"},
    {"entity_name": "Incidents"},
    {"allowed_fields": [{"name": "tenant_id\"--", "type": "text"}]},
    {"allowed_fields": [{"name": "severity", "type": "text"}]},  # no tenant_id
    {"sql": "select * from raw.incidents"},
    {"classification": "top-secret"},
    {"allowed_fields": [{"name": "tenant_id", "type": "text"}, {"name": "tenant_id", "type": "text"}]},
])
def test_malformed_entries_are_422_with_field_errors(client, token_for, change):
    resp = client.post(ENTITIES, json=_body(_name("bad"), **change), headers=auth(token_for(PLATFORM)))
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["errors"] and all({"field", "message"} <= set(e) for e in body["errors"])


def test_a_tenant_admin_manages_its_own_entries_only(client, token_for):
    acme_admin = token_for("tenant_admin@acme.example")
    own = _create(client, acme_admin, _body(_name("acme_flow"), tenant_id="acme"))
    assert own["tenant_id"] == "acme"
    # not a system entry, not another tenant's
    assert client.post(ENTITIES, json=_body(_name("sys")), headers=auth(acme_admin)).status_code == 403
    assert client.post(ENTITIES, json=_body(_name("x"), tenant_id="globex"), headers=auth(acme_admin)).status_code == 404
    # another tenant's people cannot see or touch it, and learn nothing from the id
    globex = token_for("tenant_admin@globex.example")
    one = f"{ENTITIES}/{own['entity_id']}"
    missing = f"{ENTITIES}/ent_0000000000000000"
    for method, path, body in (("GET", one, None), ("PATCH", one, {"classification": "restricted"}),
                               ("POST", f"{one}/activate", None),
                               ("POST", f"{one}/archive", {"reason_code": "SUPERSEDED"})):
        theirs = client.request(method, path, json=body, headers=auth(globex))
        unknown = client.request(method, missing if path == one else path.replace(one, missing), json=body,
                                 headers=auth(globex))
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json()["title"] == unknown.json()["title"]
    # analysts of acme may read an active entry but never change it
    client.post(f"{one}/activate", headers=auth(acme_admin))
    analyst = token_for("analyst@acme.example")
    assert client.get(one, headers=auth(analyst)).status_code == 200
    assert client.patch(one, json={"classification": "public"}, headers=auth(analyst)).status_code == 403


def test_patch_makes_a_new_version_and_if_match_refuses_a_stale_one(client, token_for):
    admin = token_for(PLATFORM)
    created = client.post(ENTITIES, json=_body(_name("versioned")), headers=auth(admin))
    one, etag = f"{ENTITIES}/{created.json()['entity_id']}", created.headers["etag"]
    changed = client.patch(one, json={"classification": "confidential"}, headers={**auth(admin), "If-Match": etag})
    assert changed.status_code == 200 and changed.json()["version"] == 2 and changed.json()["classification"] == "confidential"
    stale = client.patch(one, json={"classification": "public"}, headers={**auth(admin), "If-Match": etag})
    assert stale.status_code == 412 and "stale" in stale.json()["detail"]
    assert client.get(one, headers=auth(admin)).json()["classification"] == "confidential"
    bad_field = client.patch(one, json={"allowed_fields": [{"name": "tenant_id", "type": "text"},
                                                           {"name": "nope", "type": "text"}]}, headers=auth(admin))
    assert bad_field.status_code == 422
    assert client.patch(one, json={}, headers=auth(admin)).status_code == 422


def test_deprecate_and_archive_need_a_reason_and_archive_is_final(client, token_for, conn):
    admin = token_for(PLATFORM)
    entity = _create(client, admin, _body(_name("retire")))
    one = f"{ENTITIES}/{entity['entity_id']}"
    assert client.post(f"{one}/deprecate", json={"reason_code": "SUPERSEDED"}, headers=auth(admin)).status_code == 409
    client.post(f"{one}/activate", headers=auth(admin))
    other = client.post(f"{one}/deprecate", json={"reason_code": "OTHER"}, headers=auth(admin))
    assert other.status_code == 422 and "reason_text" in other.text
    dep = client.post(f"{one}/deprecate", json={"reason_code": "OTHER", "reason_text": "replaced by v2"},
                      headers={**auth(admin), "X-Request-ID": f"dep-{entity['entity_id']}"})
    assert dep.status_code == 200 and dep.json()["status"] == "deprecated" and dep.json()["reason_text"] == "replaced by v2"
    arch = client.post(f"{one}/archive", json={"reason_code": "NO_LONGER_NEEDED"}, headers=auth(admin))
    assert arch.status_code == 200 and arch.json()["archived_at"]
    assert client.patch(one, json={"classification": "public"}, headers=auth(admin)).status_code == 409
    with conn, conn.cursor() as cur:
        cur.execute("select actor, action, outcome from control.audit_log where correlation_id = %s order by seq",
                    (f"dep-{entity['entity_id']}",))
        assert cur.fetchall() == [(PLATFORM, "registry.deprecated", "succeeded"), (PLATFORM, "api.request", "succeeded")]


def test_the_same_name_cannot_be_registered_twice(client, token_for):
    admin, name = token_for(PLATFORM), _name("dup")
    _create(client, admin, _body(name))
    resp = client.post(ENTITIES, json=_body(name), headers=auth(admin))
    assert resp.status_code == 409 and "exists already" in resp.json()["detail"]


def test_joins_must_follow_declared_fields_of_a_visible_entity(client, token_for):
    admin = token_for(PLATFORM)
    target = _name("join_target")
    _create(client, admin, _body(target))
    good = {"to_entity": target, "keys": [{"field": "tenant_id", "to_field": "tenant_id"}]}
    _create(client, admin, _body(_name("joined"), joins=[good]))
    for bad, message in (({"to_entity": "nowhere_x", "keys": good["keys"]}, "no registry entity named"),
                         ({"to_entity": target, "keys": [{"field": "severity", "to_field": "secret"}]},
                          "'secret' is not an allowed field")):
        resp = client.post(ENTITIES, json=_body(_name("joined"), joins=[bad]), headers=auth(admin))
        assert resp.status_code == 422 and message in resp.json()["detail"]


def test_lists_are_paginated_with_a_cursor_and_a_link_header(client, token_for):
    admin = token_for(PLATFORM)
    for _ in range(3):
        _create(client, admin, _body(_name("page")))
    seen, url, pages = [], f"{ENTITIES}?limit=2", 0
    while url:
        resp = client.get(url, headers=auth(admin))
        assert resp.status_code == 200
        page = resp.json()
        seen += [e["entity_id"] for e in page["items"]]
        pages += 1
        if page["next"]:
            assert 'rel="next"' in resp.headers["link"]
            url = f"{ENTITIES}?limit=2&cursor={page['next']}"
        else:
            url = None
    assert len(seen) == len(set(seen)) >= 3 and pages >= 2 and seen == sorted(seen)
    assert client.get(f"{ENTITIES}?limit=0", headers=auth(admin)).status_code == 422
