"""Row-level security: the reporting role sees one tenant, or nothing, and cannot escape."""

from __future__ import annotations

import re

import psycopg2
import pytest

from orchestration.db import warehouse
from orchestration.metrics import dbt_manifest
from orchestration.settings import DBT_PROJECT_DIR


def tenant_scoped_models() -> list[tuple[str, int | None]]:
    """Every model in metrics/, marts/ and entities/ (the tenant-scoped folders), read off the project files
    so that a new model is covered without editing this test."""
    found = []
    for folder in ("metrics", "marts", "entities"):
        for path in sorted((DBT_PROJECT_DIR / "models" / folder).glob("*.sql")):
            match = re.fullmatch(r"(.+)_v(\d+)", path.stem)
            found.append((match[1], int(match[2])) if match else (path.stem, None))
    return found


MODELS = tenant_scoped_models()


def test_every_standard_template_model_is_covered():
    assert len(MODELS) >= 12
    assert ("metric_connector_health", 1) in MODELS and ("dim_analysts", None) in MODELS


@pytest.fixture()
def reader():
    with warehouse.reader_connection() as c:
        yield c


@pytest.mark.parametrize("name,version", MODELS)
def test_reader_sees_only_its_tenant(built, reader, tenant_ids, name, version):
    relation = dbt_manifest.model(name, version).relation
    for tenant in tenant_ids:
        with warehouse.reader_transaction(reader, tenant) as cur:
            cur.execute(f"select distinct tenant_id from {relation}")
            assert [r[0] for r in cur.fetchall()] == [tenant]


@pytest.mark.parametrize("name,version", MODELS)
def test_reader_without_tenant_sees_no_rows(built, conn, reader, name, version):
    relation = dbt_manifest.model(name, version).relation
    with conn, conn.cursor() as cur:
        cur.execute(f"select count(*) from {relation}")
        assert cur.fetchone()[0] > 0  # the admin sees data: the table is not simply empty
    with reader, reader.cursor() as cur:
        cur.execute(f"select count(*) from {relation}")
        assert cur.fetchone()[0] == 0
        cur.execute("select set_config('app.tenant_id', '', true)")
        cur.execute(f"select count(*) from {relation}")
        assert cur.fetchone()[0] == 0


@pytest.mark.parametrize("name,version", MODELS)
def test_a_tenants_query_can_read_only_its_rows_by_index(built, reader, tenant_ids, name, version):
    """The policy's tenant (tenant_id = (select rls.report_tenant())) reaches an index: a run reads its
    tenant's rows, not the whole table once per query (a fan-out over 200 tenants did that)."""
    relation = dbt_manifest.model(name, version).relation
    with warehouse.reader_transaction(reader, tenant_ids[0]) as cur:
        cur.execute("set local enable_seqscan = off")  # whatever the table's size, is there a way in?
        cur.execute(f"explain select * from {relation}")
        plan = " ".join(r[0] for r in cur.fetchall())
    assert "Index" in plan and "Seq Scan" not in plan, plan


def test_tenant_does_not_outlive_its_transaction(built, reader, tenant_ids):
    relation = dbt_manifest.model("metric_incident_flow", 1).relation
    with warehouse.reader_transaction(reader, tenant_ids[0]) as cur:
        cur.execute(f"select count(*) from {relation}")
        assert cur.fetchone()[0] > 0
    with reader, reader.cursor() as cur:
        cur.execute("select current_setting('app.tenant_id', true)")
        assert not cur.fetchone()[0]
        cur.execute(f"select count(*) from {relation}")
        assert cur.fetchone()[0] == 0


def test_report_queries_refuse_an_admin_connection(built, conn, tenant_ids):
    with pytest.raises(warehouse.WarehouseError, match="report_reader"):
        with warehouse.reader_transaction(conn, tenant_ids[0]):
            pass


def test_reader_role_owns_nothing_and_cannot_bypass(built, conn):
    with conn, conn.cursor() as cur:
        cur.execute(
            "select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb from pg_roles where rolname = %s",
            (warehouse.READER_ROLE,),
        )
        assert cur.fetchone() == (False, False, False, False)
        cur.execute(
            """select count(*) from pg_class c join pg_roles r on r.oid = c.relowner
               where r.rolname = %s""",
            (warehouse.READER_ROLE,),
        )
        assert cur.fetchone()[0] == 0


def _as_reader_fails(reader, tenant, sql) -> str:
    """The error of `sql` in a report transaction (READ ONLY, so often refused as a write) and
    the privilege error it meets as report_reader outside one: both layers must refuse."""
    with pytest.raises(psycopg2.Error):
        with warehouse.reader_transaction(reader, tenant) as cur:
            cur.execute(sql)
    with pytest.raises(psycopg2.Error) as err:
        with reader, reader.cursor() as cur:
            cur.execute(sql)
    return str(err.value)


def test_reader_cannot_disable_or_drop_rls(built, reader, tenant_ids):
    relation = dbt_manifest.model("metric_incident_flow", 1).relation
    for sql in (
        f"alter table {relation} disable row level security",
        f"alter table {relation} no force row level security",
        f"drop policy tenant_isolation on {relation}",
        "set row_security = off; select count(*) from " + relation,
    ):
        message = _as_reader_fails(reader, tenant_ids[0], sql)
        assert "must be owner" in message or "row-level security" in message or "permission denied" in message


@pytest.mark.parametrize("sql", [
    "select * from raw.incidents limit 1",
    "select * from staging.stg_incidents limit 1",
    "select * from control.report_runs limit 1",
    "create table analytics.sneaky (x int)",
    "insert into control.report_runs (run_id) values ('x')",
    "set role postgres",
    "select set_config('role', 'postgres', true)",
    "reset role; select * from raw.incidents limit 1",
])
def test_reader_cannot_reach_raw_staging_or_control(built, reader, tenant_ids, sql):
    assert "permission denied" in _as_reader_fails(reader, tenant_ids[0], sql)


def test_reader_cannot_touch_snapshots(built, reader, tenant_ids):
    assert "permission denied" in _as_reader_fails(
        reader, tenant_ids[0], "create table snapshots.sneaky (tenant_id text)"
    )


def test_rls_survives_a_rebuild(built, conn):
    dbt_manifest.build(select="metric_incident_flow")
    info = dbt_manifest.model("metric_incident_flow", 1)
    with conn, conn.cursor() as cur:
        cur.execute(
            "select relrowsecurity, relforcerowsecurity from pg_class where oid = %s::regclass", (info.relation,)
        )
        assert cur.fetchone() == (True, True)


def test_invalid_tenant_is_refused_before_any_query(conn):
    for bad in ("", "ACME", "a'; drop table x; --", "acme,globex", None):
        with pytest.raises(warehouse.WarehouseError):
            with warehouse.reader_transaction(conn, bad):
                pass
