"""The governed query builder: definitions compile to one SELECT from registry metadata only,
values bound, fields checked, masked in the database; numbers recomputed from raw data."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from pydantic import ValidationError

from orchestration.access import policy
from orchestration.access.clearance import Viewer
from orchestration.access.tokens import Authenticated
from orchestration.catalog.definitions import DefinitionSpec
from orchestration.db import warehouse
from orchestration.errors import Invalid
from orchestration.registry import builder
from orchestration.registry.entities import EntityCreate
from orchestration.services import registry as registry_service

from ..conftest import PERIOD

JUNE = builder.Window(dt.date(2026, 6, 1), dt.date(2026, 7, 1))
ANALYST = Viewer(clearance="confidential", unmasked=False, rows_allowed=False)
ROWS = Viewer(clearance="confidential", unmasked=False, rows_allowed=True)


def _fields(**over):
    fields = [
        {"name": "tenant_id", "type": "text"},
        {"name": "day", "type": "date"},
        {"name": "severity", "type": "text"},
        {"name": "incidents_opened", "type": "bigint", "aggregatable": True},
        {"name": "incidents_resolved", "type": "bigint", "aggregatable": True, "classification": "restricted"},
    ]
    return [dict(f, **over.get(f["name"], {})) for f in fields]


@pytest.fixture(scope="module")
def admin(built, conn_module):
    return Authenticated(policy.get_principal(conn_module, "platform@nexus.example"), "tok_test", frozenset())


@pytest.fixture(scope="module")
def conn_module(built):
    with warehouse.connection() as c:
        yield c


def _entity(conn, admin, fields, joins=()):
    spec = EntityCreate.model_validate({
        "entity_name": f"flow_{uuid.uuid4().hex[:8]}", "data_source": {"model": "metric_incident_flow", "version": 1},
        "allowed_fields": fields, "joins": list(joins), "classification": "internal"})
    created = registry_service.create_entity(conn, admin, spec)
    return registry_service.change_status(conn, admin, created.entity_id, "active")


@pytest.fixture(scope="module")
def flow(conn_module, admin):
    return _entity(conn_module, admin, _fields())


def _run(compiled: builder.Compiled, tenant: str) -> list[tuple]:
    with warehouse.reader_connection() as conn, warehouse.reader_transaction(conn, tenant) as cur:
        cur.execute(compiled.sql, compiled.params)
        return cur.fetchall()


def _spec(entity, **body) -> DefinitionSpec:
    return DefinitionSpec.model_validate({"report_name": "t", "entity_ids": [entity.entity_id],
                                          "time_window": {"field": f"{entity.entity_name}.day"}, **body})


def test_opened_incidents_by_severity_match_the_raw_data(flow, conn):
    n = flow.entity_name
    spec = _spec(flow, fields=[f"{n}.severity"], group_by=[f"{n}.severity"],
                 aggregates=[{"function": "sum", "field": f"{n}.incidents_opened", "alias": "opened"}],
                 sort=[{"field": f"{n}.severity", "direction": "asc"}])
    compiled = builder.compile_definition(spec, [flow], ANALYST, window=JUNE)
    got = dict(_run(compiled, "acme"))
    with conn, conn.cursor() as cur:
        cur.execute("""select severity, count(*) from raw.incidents where tenant_id = 'acme'
                       and opened_at >= '2026-06-01T00:00Z' and opened_at < '2026-07-01T00:00Z' group by severity""")
        expected = dict(cur.fetchall())
    assert PERIOD == "2026-06" and sum(expected.values()) > 0
    assert got == expected


@pytest.mark.parametrize("value", [
    "high' or '1'='1", "x); drop table control.audit_log; --", "\u0430dmin", "100% sure", "' || pg_sleep(5) --",
])
def test_filter_values_are_bound_never_in_the_sql(flow, value):
    n = flow.entity_name
    spec = _spec(flow, fields=[f"{n}.severity"], group_by=[f"{n}.severity"],
                 filters=[{"field": f"{n}.severity", "op": "eq", "value": value}],
                 aggregates=[{"function": "count", "field": f"{n}.day", "alias": "days"}])
    compiled = builder.compile_definition(spec, [flow], ANALYST, window=JUNE)
    assert value not in compiled.sql and value in compiled.params.values()
    assert _run(compiled, "acme") == []


@pytest.mark.parametrize("body", [
    {"fields": ["flow.severity; drop table x"]},
    {"fields": ['flow."severity"']},
    {"fields": ["severity"]},
    {"aggregates": [{"function": "count", "field": "a.b", "alias": "n\"; --"}]},
    {"aggregates": [{"function": "string_agg", "field": "a.b", "alias": "n"}]},
    {"fields": ["a.b"], "sort": [{"field": "a.b", "direction": "desc; drop"}]},
    {"fields": ["a.b"], "filters": [{"field": "a.b", "op": "eq", "value": "x\x00y"}]},
    {"fields": ["a.b"], "filters": [{"field": "a.b", "op": "like", "value": "x"}]},
    {"fields": ["a.b"], "filters": [{"field": "a.b", "op": "in", "value": "x"}]},
    {"fields": ["a.b"], "sql": "select 1"},
])
def test_malformed_definitions_are_refused_by_shape(body):
    with pytest.raises(ValidationError):
        DefinitionSpec.model_validate({"report_name": "t", "entity_ids": ["ent_0000000000000000"], **body})


def test_names_and_uses_are_checked_against_the_registry(flow):
    n = flow.entity_name
    count = [{"function": "count", "field": f"{n}.day", "alias": "c"}]
    cases = [
        (dict(fields=[f"{n}.password"], group_by=[f"{n}.password"], aggregates=count),
         "'password' is not an allowed field"),
        (dict(fields=["other.severity"], group_by=["other.severity"], aggregates=count),
         "not one of this definition's entities"),
        (dict(aggregates=[{"function": "sum", "field": f"{n}.severity", "alias": "s"}]), "cannot be aggregated"),
        (dict(aggregates=[{"function": "sum", "field": f"{n}.incidents_resolved", "alias": "s"}]),
         "classified restricted; the requester is cleared for confidential"),
        (dict(fields=[f"{n}.severity"]), "row-level output needs the report_rows permission"),
        (dict(aggregates=[{"function": "count", "field": f"{n}.day", "alias": "c"}],
              filters=[{"field": f"{n}.day", "op": "contains", "value": "x"}]), "contains needs a text field"),
        (dict(aggregates=[{"function": "count", "field": f"{n}.day", "alias": "c"}],
              filters=[{"field": f"{n}.incidents_opened", "op": "eq", "value": "many"}]), "is not a bigint value"),
        (dict(aggregates=[{"function": "count", "field": f"{n}.day", "alias": "c"}],
              sort=[{"field": f"{n}.tenant_id"}]), "sort by a selected field"),
    ]
    for body, message in cases:
        with pytest.raises(Invalid, match=message):
            builder.compile_definition(_spec(flow, **body), [flow], ANALYST, window=JUNE)


def test_row_level_output_with_permission_and_a_limit(flow):
    n = flow.entity_name
    spec = _spec(flow, fields=[f"{n}.day", f"{n}.severity", f"{n}.incidents_opened"],
                 sort=[{"field": f"{n}.day", "direction": "desc"}])
    rows = _run(builder.compile_definition(spec, [flow], ROWS, window=JUNE, row_limit=5), "globex")
    assert len(rows) == 5 and rows == sorted(rows, key=lambda r: r[0], reverse=True)
    assert all(JUNE.start <= r[0] < JUNE.end for r in rows)


def test_a_masked_field_is_masked_in_the_database(conn_module, admin):
    masked = _entity(conn_module, admin, _fields(severity={"masking": "hash"}))
    n = masked.entity_name
    spec = _spec(masked, fields=[f"{n}.severity"], group_by=[f"{n}.severity"],
                 aggregates=[{"function": "count", "field": f"{n}.day", "alias": "c"}])
    compiled = builder.compile_definition(spec, [masked], ANALYST, window=JUNE)
    values = [r[0] for r in _run(compiled, "acme")]
    assert values and all(len(v) == 64 and set(v) <= set("0123456789abcdef") for v in values)
    assert compiled.columns[0].masked
    clear = builder.compile_definition(spec, [masked], Viewer("confidential", True, False), window=JUNE)
    assert {r[0] for r in _run(clear, "acme")} <= {"low", "medium", "high", "critical"}


def test_joins_only_along_declared_paths(conn_module, admin, flow):
    loose = _entity(conn_module, admin, _fields())
    spec = DefinitionSpec.model_validate({
        "report_name": "t", "entity_ids": [flow.entity_id, loose.entity_id],
        "aggregates": [{"function": "count", "field": f"{flow.entity_name}.day", "alias": "c"}]})
    with pytest.raises(Invalid, match="no join is declared"):
        builder.compile_definition(spec, [flow, loose], ANALYST)
    keys = [{"field": "day", "to_field": "day"}, {"field": "severity", "to_field": "severity"}]
    joined = _entity(conn_module, admin, _fields(), joins=[{"to_entity": flow.entity_name, "keys": keys}])
    spec = DefinitionSpec.model_validate({
        "report_name": "t", "entity_ids": [flow.entity_id, joined.entity_id],
        "time_window": {"field": f"{flow.entity_name}.day"},
        "aggregates": [{"function": "sum", "field": f"{joined.entity_name}.incidents_opened", "alias": "opened"}]})
    compiled = builder.compile_definition(spec, [flow, joined], ANALYST, window=JUNE)
    opened = [{"function": "sum", "field": f"{flow.entity_name}.incidents_opened", "alias": "opened"}]
    alone = builder.compile_definition(_spec(flow, aggregates=opened), [flow], ANALYST, window=JUNE)
    assert _run(compiled, "acme") == _run(alone, "acme")


def test_the_validation_hash_follows_the_registry(conn_module, admin, flow):
    n = flow.entity_name
    spec = _spec(flow, aggregates=[{"function": "sum", "field": f"{n}.incidents_opened", "alias": "opened"}])
    before = builder.validation_hash(spec, [flow])
    assert before == builder.validation_hash(spec.model_copy(update={"report_name": "renamed"}), [flow])
    changed = flow.model_copy(update={"allowed_fields": tuple(
        f.model_copy(update={"classification": "restricted"}) if f.name == "incidents_opened" else f
        for f in flow.allowed_fields)})
    assert builder.validation_hash(spec, [changed]) != before


def test_compiled_sql_passes_the_same_guard_as_template_sections(flow, monkeypatch):
    """The guard runs on every compile: a builder bug that emitted a forbidden construct fails closed."""
    from orchestration.catalog import sql_guard

    n = flow.entity_name
    spec = _spec(flow, aggregates=[{"function": "sum", "field": f"{n}.incidents_opened", "alias": "opened"}])
    builder.compile_definition(spec, [flow], ANALYST, window=JUNE)  # passes as built
    real = builder.exp.Sum
    monkeypatch.setattr(builder.exp, "Sum", lambda this: builder.exp.func("pg_sleep", this))
    with pytest.raises(sql_guard.SqlRefused, match="pg_sleep"):
        builder.compile_definition(spec, [flow], ANALYST, window=JUNE)
    monkeypatch.setattr(builder.exp, "Sum", real)


def test_a_runs_sql_is_a_report_section_the_engine_renders_guards_and_binds(flow):
    """for_run: relations as ref() calls, the window as the run's parameters, values as JSON."""
    from orchestration.catalog import section_sql, sql_guard
    from orchestration.catalog.templates import SectionDef
    from orchestration.metrics import dbt_manifest

    n = flow.entity_name
    spec = _spec(flow, fields=[f"{n}.severity"], group_by=[f"{n}.severity"],
                 filters=[{"field": f"{n}.day", "op": "gte", "value": "2026-06-10"},
                          {"field": f"{n}.severity", "op": "in", "value": ["high", "critical"]}],
                 aggregates=[{"function": "sum", "field": f"{n}.incidents_opened", "alias": "opened"}])
    compiled = builder.compile_definition(spec, [flow], ANALYST, for_run=True)
    assert "{{ ref('metric_incident_flow', 1) }}" in compiled.sql and "analytics" not in compiled.sql
    assert "%(window_start)s" in compiled.sql and "%(window_end)s" in compiled.sql
    assert compiled.params == {"p0": "2026-06-10", "p1": "high", "p2": "critical"}  # JSON scalars
    assert [c.name for c in compiled.columns] == ["tenant_id", "severity", "opened"]  # the tenant leads, as in sections
    section = SectionDef(name="rows", title="t", columns=[{"name": c.name, "type": c.type} for c in compiled.columns],
                         sql=compiled.sql)
    rendered = section_sql.render(section, lambda name, version=None: dbt_manifest.model(name, version).relation)
    sql_guard.check(rendered.sql, section="rows", relations=rendered.relations,
                    parameters=("window_start", "window_end", *compiled.params))
    with warehouse.reader_connection() as conn, warehouse.reader_transaction(conn, "acme") as cur:
        cur.execute(section_sql.bind(rendered.sql, {**compiled.params, "window_start": JUNE.start,
                                                    "window_end": JUNE.end}, cur))
        got = cur.fetchall()
    preview = builder.compile_definition(spec, [flow], ANALYST, window=JUNE)
    assert [row[1:] for row in got] == _run(preview, "acme") and {row[0] for row in got} <= {"acme"}


def test_cases_shown_row_by_row_always_carry_their_suspension_status(conn_module, admin):
    """The specification: reports MUST include case suspension status when cases are visible."""
    from orchestration.registry.system_entities import SYSTEM_ENTITIES

    incidents = next(e for e in registry_service.register_system_entities(conn_module, actor="platform@nexus.example")
                     if e.entity_name == "incidents" and e.tenant_id is None)
    assert any(e.entity_name == "incidents" for e in SYSTEM_ENTITIES)
    rows = DefinitionSpec.model_validate({"report_name": "t", "entity_ids": [incidents.entity_id],
                                          "fields": ["incidents.incident_id", "incidents.severity"]})
    compiled = builder.compile_definition(rows, [incidents], ROWS)
    assert [c.name for c in compiled.columns] == ["incident_id", "severity", "suspension_status"]
    counted = DefinitionSpec.model_validate({
        "report_name": "t", "entity_ids": [incidents.entity_id], "fields": ["incidents.severity"],
        "group_by": ["incidents.severity"],
        "aggregates": [{"function": "count", "field": "incidents.incident_id", "alias": "n"}]})
    assert [c.name for c in builder.compile_definition(counted, [incidents], ROWS).columns] == ["severity", "n"]
