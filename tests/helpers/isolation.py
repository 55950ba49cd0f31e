"""Tenant-isolation attacks, and the models they are tried against.

The models are read off the dbt manifest: every model built with a row-level security post-hook
(tenant_rls() or governed_rls(), registry.sources.RLS_POST_HOOKS),
so a new tenant-scoped model is attacked without editing a test. Each attack is section SQL a
hostile template owner could submit, with the construct the SQL guard must name in its refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from orchestration.catalog import templates as catalog
from orchestration.metrics import dbt_manifest
from orchestration.registry import sources
from tests.helpers import principals


@dataclass(frozen=True)
class RlsModel:
    name: str
    version: int | None

    @property
    def relation(self) -> str:
        return dbt_manifest.model(self.name, self.version).relation

    @property
    def ref(self) -> str:
        version = f", {self.version}" if self.version is not None else ""
        return f"{{{{ ref('{self.name}'{version}) }}}}"

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}_v{self.version}"


def rls_models() -> list[RlsModel]:
    found = []
    for node in dbt_manifest.load_manifest()["nodes"].values():
        if node["resource_type"] == "model" and sources.rls_hook(node):
            version = node.get("version")
            found.append(RlsModel(node["name"], int(version) if version is not None else None))
    return sorted(found, key=str)


@dataclass(frozen=True)
class Attack:
    name: str
    sql: Callable[[str, str], str]  # (relation or ref, another tenant) -> section SQL
    refusal: str                    # what the guard's refusal must name

    def __str__(self) -> str:
        return self.name


ATTACKS = [
    Attack("set_config_in_cte", lambda r, other: (
        f"with s as materialized (select set_config('app.tenant_id', '{other}', true) as t)\n"
        f"select m.tenant_id from s cross join {r} m"), "set_config()"),
    Attack("set_config_in_scalar_subquery", lambda r, other: (
        f"select m.tenant_id, (select set_config('app.tenant_id', '{other}', true)) as t from {r} m"), "set_config()"),
    Attack("report_context_forged", lambda r, other: (
        f"select m.tenant_id, set_config('app.report_context', '{other}', true) as t from {r} m"), "set_config()"),
    Attack("schema_qualified_set_config", lambda r, other: (
        f"select m.tenant_id, pg_catalog.set_config('app.tenant_id', '{other}', true) from {r} m"),
        "schema-qualified function call"),
    Attack("do_block_closing_the_gate_a_wrapper", lambda r, other: (
        f"select tenant_id from {r}) as gate_a limit 0;\n"
        f"do $$ begin raise exception 'leak %', (select string_agg(tenant_id, ',') from {r}); end $$;\n"
        f"select * from (select tenant_id from {r}"), "';'"),
    Attack("pg_stats_most_common_vals", lambda r, other: (
        f"select m.tenant_id, s.most_common_vals::text as v from {r} m, pg_catalog.pg_stats s"),
        "system catalog pg_catalog.pg_stats"),
    Attack("pg_class_table_sizes", lambda r, other: (
        f"select m.tenant_id, c.reltuples from {r} m join pg_class c on c.relname = 'x'"), "system catalog pg_class"),
    Attack("information_schema", lambda r, other: (
        f"select m.tenant_id from {r} m, information_schema.tables t"), "information_schema.tables"),
    Attack("pg_sleep_timing", lambda r, other: (
        f"select tenant_id from {r} where tenant_id = '{other}' or pg_sleep(0.01) is null"), "pg_sleep()"),
    Attack("staging_view_join", lambda r, other: (
        f"select m.tenant_id from {r} m join staging.stg_incidents s on s.tenant_id = m.tenant_id"),
        "staging.stg_incidents in schema staging"),
    Attack("raw_table", lambda r, other: f"select tenant_id from raw.incidents union all select tenant_id from {r}",
           "raw.incidents"),
    Attack("current_setting_read", lambda r, other: (
        f"select m.tenant_id, current_setting('app.report_context') as t from {r} m"), "current_setting()"),
    Attack("dblink", lambda r, other: f"select m.tenant_id, dblink('dbname=x', 'select 1') from {r} m", "dblink()"),
    Attack("large_object", lambda r, other: f"select m.tenant_id, lo_import('/etc/passwd') from {r} m", "lo_import()"),
    Attack("file_read", lambda r, other: f"select m.tenant_id, pg_read_file('/etc/passwd') from {r} m",
           "pg_read_file()"),
    Attack("query_to_xml", lambda r, other: (
        f"select m.tenant_id, query_to_xml('select 1', true, true, '') from {r} m"), "query_to_xml()"),
    Attack("advisory_lock", lambda r, other: f"select m.tenant_id, pg_advisory_lock(1) from {r} m",
           "pg_advisory_lock()"),
    Attack("txid", lambda r, other: f"select m.tenant_id, txid_current() from {r} m", "txid_current()"),
    Attack("locking_clause", lambda r, other: f"select tenant_id from {r} for update", "locking clause"),
    Attack("write_in_cte", lambda r, other: (
        f"with d as (delete from {r} returning tenant_id) select tenant_id from d"), "DELETE"),
    Attack("select_into", lambda r, other: f"select tenant_id into analytics.stolen from {r}", "SELECT INTO"),
    Attack("regclass_cast", lambda r, other: f"select tenant_id, 'pg_class'::regclass from {r}", "cast to REGCLASS"),
    Attack("catalog_shadowed_by_an_out_of_scope_cte", lambda r, other: (
        f"select m.tenant_id from {r} m, (with pg_class as (select 1 as x) select x from pg_class) c, pg_class"),
        "system catalog pg_class"),
]


def hostile_template(base: catalog.Template, key: str, sql: str, version: int = 1) -> catalog.Template:
    """`base` with one section whose SQL is `sql` (declaring the single column tenant_id)."""
    section = base.sections[0].model_copy(update={
        "name": "loot", "sql": sql, "columns": (catalog.ColumnDef(name="tenant_id", type="text"),)})
    return base.model_copy(update={
        "key": key, "version": version, "sections": (section,), "primary_section": "loot",
        "key_figures": None, "charts": (), "metrics": (), "sources": (),
        "redaction": catalog.RedactionPolicy()})


@pytest.fixture(scope="module", name="hostile_sibling")
def hostile_sibling_fixture(built, tenant_ids):
    """A custom template of tenant B whose section switches the tenant to A and reads catalogs,
    present while tenant A's reports run: refused by Gate A at submit, then planted as approved
    (as an older release might have let it through) and run for B, which the guard fails closed."""
    from orchestration.access import policy
    from orchestration.db import warehouse
    from orchestration.governance import lifecycle
    from orchestration.runs import engine, failures
    from orchestration.runs.request import ReportRequest
    from orchestration.services import templates as template_service

    from ..conftest import PERIOD

    mine, victim = tenant_ids[1], tenant_ids[0]
    owner, runner = f"template_owner@{mine}.example", f"manager@{mine}.example"
    flow = RlsModel("metric_incident_flow", 1)
    sql = ATTACKS[0].sql(flow.ref, victim) + f"\nunion all select tenant_id from {flow.ref}"
    hostile = hostile_template(catalog.load("incident_summary", 1), "sibling_loot", sql)
    with warehouse.connection() as conn:
        principals.upsert_principal(conn, owner, roles=["template_owner"], tenants=[mine])
        with pytest.raises(lifecycle.GateAFailed, match=r"set_config\(\) is not allowed"):
            template_service.submit_template(conn, hostile, actor=owner, tenant_id=mine)
        with conn, conn.cursor() as cur:
            cur.execute("""insert into control.template_versions (template_key, version, owner_tenant, content_hash,
                               content, author, state, approved_by, approved_at)
                           values (%s, %s, %s, %s, %s, %s, 'approved', %s, now())""",
                        (hostile.key, hostile.version, mine, hostile.content_hash,
                         warehouse.json_param(hostile.model_dump(mode="json")), owner, policy.APPROVERS[0]))
        request = ReportRequest.for_period(hostile, mine, PERIOD, requester=runner)
        with pytest.raises(failures.RunFailed) as failed:
            engine.run_report(hostile, request, conn=conn, retries=False)
        assert failed.value.failure_class == "query_failure" and "set_config() is not allowed" in failed.value.diagnosis
    return hostile
