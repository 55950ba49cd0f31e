"""The system registry entries for the governed entity models: registered once (idempotent,
audited), every one passing the registry's manifest checks, joins declared along their keys."""

from __future__ import annotations

import pytest

from orchestration.access import policy
from orchestration.access.tokens import Authenticated
from orchestration.errors import Denied
from orchestration.governance.versioned import Retirement
from orchestration.metrics import dbt_manifest
from orchestration.registry import sources
from orchestration.registry.system_entities import SYSTEM_ENTITIES
from orchestration.services import registry
from tests.helpers.audit import audit_entries, last_seq

PLATFORM_ADMIN = "platform@nexus.example"
NAMES = ["sites", "connectors", "compliance_controls", "incidents", "alerts", "awareness_measurements"]


@pytest.fixture(scope="module")
def registered(built):
    from orchestration.db import warehouse

    with warehouse.connection() as c:
        return registry.register_system_entities(c, actor=PLATFORM_ADMIN)


def test_every_entity_model_is_registered_and_active(registered):
    assert [e.entity_name for e in registered] == NAMES
    for entity in registered:
        assert entity.status == "active" and entity.tenant_id is None
        assert entity.data_source.model == entity.entity_name and entity.data_source.version == 1


def test_registering_again_changes_nothing(registered, conn):
    since = last_seq(conn)
    again = registry.register_system_entities(conn, actor=PLATFORM_ADMIN)
    assert [(e.entity_id, e.version, e.status) for e in again] == [
        (e.entity_id, e.version, e.status) for e in registered]
    assert [r for r in audit_entries(conn, after_seq=since) if r.action.startswith("registry.")] == []


def test_the_first_registration_was_audited(registered, conn):
    for entity in registered:
        actions = [(r.action, r.actor) for r in audit_entries(conn, target=entity.entity_id)]
        assert ("registry.create", PLATFORM_ADMIN) in actions and ("registry.active", PLATFORM_ADMIN) in actions


@pytest.mark.parametrize("spec", SYSTEM_ENTITIES, ids=lambda s: s.entity_name)
def test_every_entry_passes_the_manifest_checks(spec):
    sources.check_fields(spec.data_source, spec.allowed_fields)  # raises Invalid with the reason
    columns = sources.model_columns(spec.data_source)
    node = dbt_manifest.load_manifest()["nodes"][dbt_manifest.model(spec.data_source.model, 1).unique_id]
    assert sources.rls_hook(node) == "governed_rls"
    names = {f.name for f in spec.allowed_fields}
    assert {"tenant_id", "vertical", "region"} <= names
    assert names <= set(columns)


def test_governance_metadata(registered):
    by_name = {e.entity_name: e for e in registered}
    fields = {(e.entity_name, f.name): f for e in registered for f in e.allowed_fields}
    assert fields["incidents", "subject_id"].masking == "hash"
    assert fields["awareness_measurements", "subject_id"].masking == "hash"
    assert fields["incidents", "title"].classification == "confidential"
    assert "suspension_status" in {f.name for f in by_name["incidents"].allowed_fields}
    assert fields["awareness_measurements", "score"].aggregatable
    joins = {(e.entity_name, j.to_entity): [(k.field, k.to_field) for k in j.keys]
             for e in registered for j in e.joins}
    assert joins == {
        ("incidents", "sites"): [("site_id", "site_id")],
        ("alerts", "incidents"): [("incident_id", "incident_id")],
        ("alerts", "connectors"): [("connector_id", "connector_id")],
    }


def test_only_a_platform_admin_registers_them(registered, conn):
    since = last_seq(conn)
    with pytest.raises(Denied):
        registry.register_system_entities(conn, actor="tenant_admin@acme.example")
    with pytest.raises(Denied):
        registry.register_system_entities(conn, actor="nobody@nowhere.example")
    denied = [r for r in audit_entries(conn, after_seq=since) if r.action == "manage_registry.denied"]
    assert {r.actor for r in denied} == {"tenant_admin@acme.example", "nobody@nowhere.example"}


def test_a_deprecated_entry_is_left_alone_and_an_archived_one_is_registered_anew(registered, conn):
    admin = Authenticated(policy.get_principal(conn, PLATFORM_ADMIN), "tok_test", frozenset())
    sites = next(e for e in registered if e.entity_name == "sites")
    connectors = next(e for e in registered if e.entity_name == "connectors")
    try:
        registry.change_status(conn, admin, connectors.entity_id, "deprecated", Retirement(reason_code="OTHER",
                                                                                          reason_text="test"))
        registry.change_status(conn, admin, sites.entity_id, "archived", Retirement(reason_code="OTHER",
                                                                                   reason_text="test"))
        again = {e.entity_name: e for e in registry.register_system_entities(conn, actor=PLATFORM_ADMIN)}
        assert again["connectors"].entity_id == connectors.entity_id and again["connectors"].status == "deprecated"
        assert again["sites"].entity_id != sites.entity_id and again["sites"].status == "active"
    finally:
        registry.change_status(conn, admin, connectors.entity_id, "active")
