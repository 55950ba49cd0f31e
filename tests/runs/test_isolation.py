"""Tenant isolation in the database, whatever a report query contains (the SQL guard bypassed).

Each check runs directly as report_reader against every tenant-scoped model: the settings a
query can change (app.tenant_id, app.report_context) select nothing, a reader without a context
sees nothing, contexts die with their transaction, and a hostile section that gets past the
guard still snapshots only its own tenant.
"""

from __future__ import annotations

import psycopg2
import pytest

from orchestration.catalog import sql_guard
from orchestration.catalog import templates as catalog
from orchestration.db import report_context, warehouse
from orchestration.runs import snapshot
from orchestration.runs.request import ReportRequest

from ..conftest import PERIOD, analyst
from ..helpers.isolation import ATTACKS, rls_models

MODELS = rls_models()
IN_QUERY = [a for a in ATTACKS if a.name in ("set_config_in_cte", "set_config_in_scalar_subquery")]


@pytest.fixture(scope="module")
def readers(built, kpi_world):
    """Two report_reader backends: the attacker's, and a sibling holding another tenant's context.
    (kpi_world: the KPI models hold rows of every tenant, so they are attacked like the others.)"""
    with warehouse.reader_connection() as mine, warehouse.reader_connection() as sibling:
        yield mine, sibling


@pytest.fixture()
def reader(readers):
    mine = readers[0]
    yield mine
    mine.rollback()
    with mine, mine.cursor() as cur:
        cur.execute("reset all")  # session-level SETs an attack left behind


def _counts(cur, relation: str, mine: str) -> tuple[int, int]:
    cur.execute(f"select count(*) filter (where tenant_id <> %s), count(*) from {relation}", (mine,))
    return cur.fetchone()


@pytest.mark.parametrize("model", MODELS, ids=str)
def test_settings_a_query_can_change_grant_nothing(readers, reader, tenant_ids, model):
    mine, other = tenant_ids[0], tenant_ids[1]
    relation = model.relation
    with warehouse.reader_transaction(readers[1], other) as sibling:
        sibling.execute("select current_setting('app.report_context')")
        other_token = sibling.fetchone()[0]  # a live context of another tenant, on another backend
        forgeries = [
            f"select set_config('app.tenant_id', '{other}', true)",
            f"set local app.tenant_id = '{other}'",
            f"set app.tenant_id = '{other}'",
            f"select set_config('app.report_context', '{other_token}', true)",
            f"set local app.report_context = '{other_token}'",
            f"set app.report_context = '{other_token}'",
        ]
        for forge in forgeries:
            with warehouse.reader_transaction(reader, mine) as cur:
                assert _counts(cur, relation, mine)[1] > 0, "the tenant sees its own rows before the attack"
                cur.execute(forge)
                foreign, total = _counts(cur, relation, mine)
                assert foreign == 0, f"{forge} showed {foreign} rows of other tenants"
                if "report_context" in forge:
                    assert total == 0, f"{forge}: another backend's context must not work here"


@pytest.mark.parametrize("model", MODELS, ids=str)
@pytest.mark.parametrize("attack", IN_QUERY, ids=str)
def test_set_config_inside_the_query_grants_nothing(reader, tenant_ids, attack, model):
    mine = tenant_ids[0]
    with warehouse.reader_transaction(reader, mine) as cur:
        cur.execute(f"select count(*) filter (where tenant_id <> %s) from ({attack.sql(model.relation, tenant_ids[1])}) q",
                    (mine,))
        assert cur.fetchone()[0] == 0


@pytest.mark.parametrize("model", MODELS, ids=str)
def test_a_reader_without_a_context_sees_nothing_whatever_it_sets(built, conn, reader, tenant_ids, model):
    with conn, conn.cursor() as cur:
        cur.execute(f"select count(*) from {model.relation} where tenant_id = %s", (tenant_ids[0],))
        assert cur.fetchone()[0] > 0  # the admin sees the rows: the table is not simply empty
    with reader, reader.cursor() as cur:
        cur.execute(f"set app.tenant_id = '{tenant_ids[0]}'")
        cur.execute("select set_config('app.report_context', gen_random_uuid()::text, false)")
        cur.execute(f"select count(*) from {model.relation}")
        assert cur.fetchone()[0] == 0


@pytest.mark.parametrize("model", MODELS, ids=str)
def test_user_predicates_never_see_another_tenants_rows(reader, tenant_ids, model):
    """No timing channel (pg_sleep) or error channel through a predicate: RLS filters first, so a
    volatile function in the query is evaluated on the tenant's own rows only. Counted, not timed."""
    mine = tenant_ids[0]
    with warehouse.reader_transaction(reader, mine) as cur:
        cur.execute(f"""select count(*) from {model.relation}
                        where set_config('app.n', (coalesce(nullif(current_setting('app.n', true), ''), '0')::int + 1)::text,
                                         true) is not null""")
        visible = cur.fetchone()[0]
        cur.execute("select current_setting('app.n')::int")
        assert cur.fetchone()[0] == visible > 0


def test_a_token_outlives_neither_its_transaction_nor_its_row(reader, conn, tenant_ids):
    relation = MODELS[0].relation
    with warehouse.reader_transaction(reader, tenant_ids[0]) as cur:
        cur.execute("select current_setting('app.report_context')")
        token = cur.fetchone()[0]
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from control.report_contexts where backend_pid = %s", (reader.get_backend_pid(),))
        assert cur.fetchone()[0] == 0
    with reader, reader.cursor() as cur:
        cur.execute("select set_config('app.report_context', %s, false)", (token,))
        cur.execute(f"select count(*) from {relation}")
        assert cur.fetchone()[0] == 0


def test_the_context_is_removed_when_the_transaction_fails(reader, conn, tenant_ids):
    with pytest.raises(psycopg2.errors.DivisionByZero):
        with warehouse.reader_transaction(reader, tenant_ids[0]) as cur:
            cur.execute("select 1 / 0")
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from control.report_contexts where backend_pid = %s", (reader.get_backend_pid(),))
        assert cur.fetchone()[0] == 0


def test_contexts_of_ended_backends_are_purged(built, conn, tenant_ids):
    with warehouse.reader_connection() as gone:
        pid = gone.get_backend_pid()
        report_context.open_context(pid, tenant_ids[0])  # as if the process died inside the transaction
    with warehouse.reader_connection() as alive, warehouse.reader_transaction(alive, tenant_ids[0]):
        pass
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from control.report_contexts where backend_pid = %s", (pid,))
        assert cur.fetchone()[0] == 0


def test_contexts_are_only_bound_to_report_reader_backends_and_only_by_the_admin(built, conn, reader, tenant_ids):
    with pytest.raises(report_context.ContextError, match="report_reader"):
        report_context.open_context(conn.get_backend_pid(), tenant_ids[0])
    for sql in (f"insert into control.report_contexts (backend_pid, backend_start, tenant_id) "
                f"values (pg_backend_pid(), now(), '{tenant_ids[1]}')",
                "select * from control.report_contexts",
                "create function rls.report_tenant_2() returns text language sql as $$ select 'x' $$"):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            with reader, reader.cursor() as cur:  # not even outside a READ ONLY report transaction
                cur.execute(sql)


def test_the_tenant_function_is_a_pinned_security_definer_of_the_admin(conn):
    with conn, conn.cursor() as cur:
        cur.execute("""select p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner),
                              has_function_privilege('report_reader', p.oid, 'execute'),
                              coalesce(array_to_string(p.proacl, ','), '')
                       from pg_proc p where p.oid = 'rls.report_tenant()'::regprocedure""")
        definer, config, owner, reader_may, acl = cur.fetchone()
    assert definer and owner != warehouse.READER_ROLE and reader_may
    assert any(c.startswith("search_path=pg_catalog") for c in config)
    assert not any(entry.startswith("=") for entry in acl.split(",")), f"PUBLIC may execute: {acl}"


def test_report_transactions_are_read_only(reader, tenant_ids):
    for sql in ("create temp table t (x int)", "set transaction read write"):
        with pytest.raises(psycopg2.Error, match="read-only transaction|read-write mode"):
            with warehouse.reader_transaction(reader, tenant_ids[0]) as cur:
                cur.execute("select 1")
                cur.execute(sql)


def test_pg_stats_shows_the_reader_no_other_tenants_values(built, conn, reader, tenant_ids):
    mine, others = tenant_ids[0], tenant_ids[1:]
    relations = [m.relation for m in MODELS]
    with conn, conn.cursor() as cur:
        for relation in relations:
            cur.execute(f"analyze {relation}")
        cur.execute("select string_agg(most_common_vals::text, ' ') from pg_stats where schemaname = 'analytics'")
        admin_view = cur.fetchone()[0] or ""
    assert any(o in admin_view for o in others), "no statistics name other tenants: the test would prove nothing"
    with warehouse.reader_transaction(reader, mine) as cur:
        cur.execute("""select coalesce(string_agg(concat_ws(' ', most_common_vals::text, histogram_bounds::text), ' '), '')
                       from pg_stats where schemaname in ('analytics', 'staging', 'raw', 'control')""")
        reader_view = cur.fetchone()[0]
    assert not [o for o in others if o in reader_view]


# ------------------------------------------------------------------ snapshots


@pytest.fixture(scope="module")
def base():
    return catalog.load("incident_summary")


def _one_section(base: catalog.Template, sql: str) -> catalog.Template:
    section = base.sections[0].model_copy(update={
        "name": "loot", "sql": sql, "columns": (catalog.ColumnDef(name="tenant_id", type="text"),)})
    return base.model_copy(update={"sections": (section,), "primary_section": "loot"})


@pytest.mark.parametrize("model", MODELS, ids=str)
def test_a_hostile_section_past_the_guard_snapshots_only_its_tenant(conn, readers, tenant_ids, base, model,
                                                                    monkeypatch):
    monkeypatch.setattr(sql_guard, "check", lambda *a, **k: None)  # as if the guard had a hole
    mine, other = tenant_ids[1], tenant_ids[0]
    hostile = _one_section(base, f"""
        with s as materialized (select set_config('app.tenant_id', '{other}', true) as t,
                                       set_config('app.report_context', '', true) as u)
        select m.tenant_id from s cross join {model.ref} m
        union all
        select m.tenant_id from {model.ref} m where (select set_config('app.tenant_id', '{other}', true)) is not null
        """)
    request = ReportRequest.for_period(hostile, mine, PERIOD, requester=analyst(mine))
    run_id = f"hostile{abs(hash(str(model))) % 10**9:09d}"
    snaps = snapshot.take(conn, readers[0], run_id, hostile, request)
    with conn, conn.cursor() as cur:
        cur.execute(f"select distinct tenant_id from {snaps['loot'].table}")
        assert {r[0] for r in cur.fetchall()} <= {mine}
    snapshot.drop(conn, run_id, ["loot"])


def test_the_guard_stops_a_hostile_section_before_it_runs(conn, readers, tenant_ids, base):
    hostile = _one_section(base, "select tenant_id, current_setting('app.report_context') as t "
                                 "from {{ ref('metric_incident_status', 1) }}")
    request = ReportRequest.for_period(hostile, tenant_ids[0], PERIOD, requester=analyst(tenant_ids[0]))
    with pytest.raises(snapshot.SnapshotError, match=r"section loot: the function current_setting\(\) is not allowed"):
        snapshot.take(conn, readers[0], "guarded000000001", hostile, request)
    assert snapshot.tables_of(conn, "guarded000000001") == {}


def test_a_literal_percent_in_section_sql_runs(conn, readers, tenant_ids, base):
    section = base.section("by_status")
    sql = section.sql.replace("group by", "and status::text not like 'zz%' and 7 % 2 = 1\n group by", 1)
    assert sql != section.sql
    template = base.model_copy(update={"sections": (section.model_copy(update={"sql": sql}),),
                                       "primary_section": "by_status"})
    request = ReportRequest.for_period(template, tenant_ids[0], PERIOD, requester=analyst(tenant_ids[0]))
    snaps = snapshot.take(conn, readers[0], "percent000000001", template, request)
    assert snaps["by_status"].row_count > 0
    snapshot.drop(conn, "percent000000001", ["by_status"])
