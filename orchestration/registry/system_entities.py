"""The system registry entries: the governed entity models (dbt models/entities/) as the report
builder may use them, for every tenant.

Each entry exposes a model's columns with a type (checked against the dbt contract when the
entry is created), a classification, a masking rule and what the builder may do with each
field; joins are declared along the models' keys. Row-level security on tenant, verticals,
regions and consent lives in the database (governed_rls); vertical_scope and geo_scope are
left empty (the entities serve every vertical and region) because the rows themselves carry
them. The order matters: an entry's joins name entries created before it.
"""

from __future__ import annotations

from orchestration.registry.entities import DataSource, EntityCreate, FieldSpec, JoinKey, JoinSpec


def _f(name: str, type_: str, classification: str = "internal", *, masking: str = "none", filterable: bool = True,
       groupable: bool = True, aggregatable: bool = False) -> FieldSpec:
    return FieldSpec(name=name, type=type_, classification=classification, masking=masking, filterable=filterable,
                     groupable=groupable, aggregatable=aggregatable)


def _id(name: str, type_: str = "text") -> FieldSpec:
    """A key: filtered on and counted, not a grouping dimension."""
    return _f(name, type_, groupable=False, aggregatable=True)


def _time(name: str) -> FieldSpec:
    return _f(name, "timestamptz", groupable=False, aggregatable=True)  # min/max; group by a day in the builder


def _join(to: str, field: str, to_field: str | None = None, kind: str = "inner") -> JoinSpec:
    return JoinSpec(to_entity=to, keys=(JoinKey(field=field, to_field=to_field or field),), kind=kind)


# Every row carries these: the tenant (RLS), and the vertical and region (RLS and grouping).
_SCOPED = (_f("tenant_id", "text"), _f("vertical", "text"), _f("region", "text"))


def _entry(name: str, classification: str, fields: tuple[FieldSpec, ...], joins: tuple[JoinSpec, ...] = ()) -> EntityCreate:
    return EntityCreate(entity_name=name, data_source=DataSource(model=name, version=1), classification=classification,
                        allowed_fields=(*_SCOPED, *fields), joins=joins)


SYSTEM_ENTITIES: tuple[EntityCreate, ...] = (
    _entry("sites", "internal", (
        _id("site_id"), _f("site_name", "text"), _f("country", "text"), _time("opened_at"),
    )),
    _entry("connectors", "internal", (
        _id("connector_id"), _f("connector_name", "text"), _f("kind", "text"), _time("created_at"),
    )),
    _entry("compliance_controls", "internal", (
        _id("control_id"), _f("framework", "text"), _f("control_title", "text", groupable=False),
        _f("owner_id", "text", "confidential"), _time("latest_evidence_at"), _f("latest_evidence_status", "text"),
    )),
    _entry("incidents", "confidential", (
        _id("incident_id", "bigint"),
        _f("title", "text", "confidential", masking="truncate", groupable=False),
        _f("severity", "text"), _f("status", "text"), _time("opened_at"), _time("acknowledged_at"),
        _time("resolved_at"), _f("team", "text"), _f("assignee_id", "text", "confidential"),
        _f("attack_technique_id", "text"),
        _f("ack_seconds", "numeric", groupable=False, aggregatable=True),
        _f("resolve_seconds", "numeric", groupable=False, aggregatable=True),
        _f("site_id", "text"), _f("suspension_status", "text"),
        _f("suspension_reason", "text", "confidential"),
        # the person the case concerns: pseudonymous id, shown hashed unless cleared for pii
        _f("subject_id", "text", "confidential", masking="hash", groupable=False, aggregatable=True),
    ), joins=(_join("sites", "site_id"),)),
    _entry("alerts", "internal", (
        _id("alert_id", "bigint"), _f("incident_id", "bigint", groupable=False, aggregatable=True),
        _f("connector_id", "text"), _f("rule_name", "text"), _f("severity", "text"),
        _f("attack_technique_id", "text"), _time("created_at"), _f("escalated", "boolean"),
    ), joins=(_join("incidents", "incident_id"), _join("connectors", "connector_id"))),
    _entry("awareness_measurements", "confidential", (
        _id("measurement_id", "bigint"),
        _f("subject_id", "text", "confidential", masking="hash", groupable=False, aggregatable=True),
        _f("programme", "text"), _time("measured_at"), _f("measurement_type", "text"),
        _f("score", "numeric", groupable=False, aggregatable=True),
        _f("clicked", "boolean", aggregatable=True), _f("reported", "boolean", aggregatable=True),
    )),
)
