"""Row-level security of the governed entity models: tenant, verticals, regions and consent,
as the reporting role sees them, every number recomputed from raw with the admin connection."""

from __future__ import annotations

import psycopg2
import pytest

from orchestration.db import warehouse
from orchestration.db.report_context import ReaderScope
from orchestration.metrics import dbt_manifest

# entity model -> (raw table, key, subject column or None)
ENTITIES = {
    "incidents": ("incidents", "incident_id", "subject_id"),
    "alerts": ("alerts", "alert_id", None),
    "connectors": ("connectors", "connector_id", None),
    "compliance_controls": ("compliance_controls", "control_id", None),
    "awareness_measurements": ("awareness_measurements", "measurement_id", "subject_id"),
    "sites": ("sites", "site_id", None),
}
# The subjects whose latest consent event is a withdrawal, per tenant (what RLS must hide).
WITHDRAWN = """
    select subject_id from (
        select distinct on (subject_id) subject_id, state from raw.consent_events
        where tenant_id = %(tenant)s order by subject_id, changed_at desc, event_id desc) latest
    where state = 'withdrawn'"""


def relation(name: str) -> str:
    return dbt_manifest.model(name, 1).relation


@pytest.fixture()
def reader(built):
    with warehouse.reader_connection() as c:
        yield c


def _admin(conn, sql: str, params=None) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _expected_keys(conn, name: str, tenant: str, *, verticals=None, regions=None, include_withdrawn=False) -> set:
    table, key, subject = ENTITIES[name]
    sql = f"select {key} from raw.{table} t where tenant_id = %(tenant)s"
    if verticals is not None:
        sql += " and vertical = any(%(verticals)s)"
    if regions is not None:
        sql += " and region = any(%(regions)s)"
    if subject and not include_withdrawn:
        sql += f" and (subject_id is null or subject_id not in ({WITHDRAWN}))"
    rows = _admin(conn, sql, {"tenant": tenant, "verticals": verticals and list(verticals),
                              "regions": regions and list(regions)})
    return {r[0] for r in rows}


def _seen_keys(reader, name: str, tenant: str, scope: ReaderScope | None) -> set:
    key = ENTITIES[name][1]
    with warehouse.reader_transaction(reader, tenant, scope=scope) as cur:
        cur.execute(f"select {key} from {relation(name)}")
        return {r[0] for r in cur.fetchall()}


def _verticals(conn, tenant: str) -> list[str]:
    return [r[0] for r in _admin(conn, "select distinct vertical from raw.sites where tenant_id = %s order by 1",
                                 (tenant,))]


@pytest.mark.parametrize("name", ENTITIES)
def test_two_of_three_verticals_is_exactly_the_intersection(built, conn, reader, tenant_ids, name):
    tenant = tenant_ids[0]
    verticals = _verticals(conn, tenant)
    assert len(verticals) == 3
    chosen = tuple(verticals[:2])
    expected = _expected_keys(conn, name, tenant, verticals=chosen)
    assert expected and expected != _expected_keys(conn, name, tenant)  # the scope does cut something
    assert _seen_keys(reader, name, tenant, ReaderScope(verticals=chosen)) == expected


@pytest.mark.parametrize("name", ENTITIES)
def test_a_region_scope_never_shows_another_region(built, conn, reader, tenant_ids, name):
    for tenant in tenant_ids:
        for region in ("emea", "amer", "apac"):
            scope = ReaderScope(geo_scopes=(region,))
            seen = _seen_keys(reader, name, tenant, scope)
            assert seen == _expected_keys(conn, name, tenant, regions=(region,))
            with warehouse.reader_transaction(reader, tenant, scope=scope) as cur:
                cur.execute(f"select distinct region from {relation(name)}")
                assert {r[0] for r in cur.fetchall()} <= {region}


def test_verticals_and_regions_together(built, conn, reader, tenant_ids):
    tenant = tenant_ids[0]
    chosen = tuple(_verticals(conn, tenant)[1:])
    scope = ReaderScope(verticals=chosen, geo_scopes=("emea", "apac"))
    for name in ENTITIES:
        assert _seen_keys(reader, name, tenant, scope) == _expected_keys(
            conn, name, tenant, verticals=chosen, regions=("emea", "apac")), name


def test_no_scope_is_the_whole_tenant_without_withdrawn_subjects(built, conn, reader, tenant_ids):
    for tenant in tenant_ids:
        for name in ENTITIES:
            assert _seen_keys(reader, name, tenant, None) == _expected_keys(conn, name, tenant), name


def _totals(reader, tenant: str, scope: ReaderScope | None) -> tuple:
    with warehouse.reader_transaction(reader, tenant, scope=scope) as cur:
        cur.execute(f"select count(*), count(subject_id) from {relation('incidents')}")
        incidents = cur.fetchone()
        cur.execute(f"select count(*), sum(score), sum(clicked::int) from {relation('awareness_measurements')}")
        return incidents + cur.fetchone()


def _raw_totals(conn, tenant: str, *, include_withdrawn: bool) -> tuple:
    consent = "" if include_withdrawn else f" and (subject_id is null or subject_id not in ({WITHDRAWN}))"
    incidents = _admin(conn, "select count(*), count(subject_id) from raw.incidents where tenant_id = %(tenant)s"
                             + consent, {"tenant": tenant})[0]
    awareness = _admin(conn, "select count(*), sum(score), sum(clicked::int) from raw.awareness_measurements"
                             " where tenant_id = %(tenant)s" + consent, {"tenant": tenant})[0]
    return incidents + awareness


def test_withdrawn_subjects_leave_every_count_and_sum(built, conn, reader, tenant_ids):
    for tenant in tenant_ids:
        withdrawn = _admin(conn, WITHDRAWN, {"tenant": tenant})
        assert withdrawn, f"the sample data of {tenant} has no withdrawn subject to test with"
        without = _raw_totals(conn, tenant, include_withdrawn=False)
        everyone = _raw_totals(conn, tenant, include_withdrawn=True)
        assert without[0] < everyone[0] and without[3] < everyone[3]  # the rule removes incidents and scores
        assert _totals(reader, tenant, None) == without
        assert _totals(reader, tenant, ReaderScope()) == without
        assert _totals(reader, tenant, ReaderScope(include_withdrawn=True)) == everyone


def _subject_with_incidents(conn, tenant: str) -> tuple[str, int]:
    """A subject whose consent stands (latest event granted) and who has incidents."""
    return _admin(conn, f"""select subject_id, count(*) from raw.incidents
                            where tenant_id = %(tenant)s and subject_id is not null
                              and subject_id not in ({WITHDRAWN})
                            group by subject_id order by count(*) desc, subject_id limit 1""",
                  {"tenant": tenant})[0]


def test_a_withdrawal_counts_on_the_next_query_and_a_regrant_restores(built, conn, reader, tenant_ids):
    tenant = tenant_ids[1]
    subject, incidents = _subject_with_incidents(conn, tenant)
    before = _totals(reader, tenant, None)
    added = []
    try:
        added += _admin(conn, """insert into raw.consent_events (tenant_id, subject_id, state, changed_at, reason)
                                 values (%s, %s, 'withdrawn', now(), 'subject_request') returning event_id""",
                        (tenant, subject))
        after = _totals(reader, tenant, None)  # no dbt build in between
        assert after[0] == before[0] - incidents
        assert after[1] == before[1] - incidents
        assert _totals(reader, tenant, ReaderScope(include_withdrawn=True)) == _raw_totals(
            conn, tenant, include_withdrawn=True)
        assert subject not in {r[0] for r in _seen_subjects(reader, tenant)}
        added += _admin(conn, """insert into raw.consent_events (tenant_id, subject_id, state, changed_at, reason)
                                 values (%s, %s, 'granted', now() + interval '1 second', 'renewed_consent')
                                 returning event_id""", (tenant, subject))
        assert _totals(reader, tenant, None) == before
        assert subject in {r[0] for r in _seen_subjects(reader, tenant)}
    finally:
        _admin(conn, "delete from raw.consent_events where event_id = any(%s) returning event_id",
               ([r[0] for r in added],))
    assert _totals(reader, tenant, None) == before


def _seen_subjects(reader, tenant: str) -> list[tuple]:
    with warehouse.reader_transaction(reader, tenant) as cur:
        cur.execute(f"select distinct subject_id from {relation('incidents')} where subject_id is not null")
        return cur.fetchall()


def test_a_withdrawal_in_another_tenant_changes_nothing_here(built, conn, reader, tenant_ids):
    mine, other = tenant_ids[0], tenant_ids[1]
    subject, _ = _subject_with_incidents(conn, other)
    before = _totals(reader, mine, None)
    added = _admin(conn, """insert into raw.consent_events (tenant_id, subject_id, state, changed_at, reason)
                            values (%s, %s, 'withdrawn', now(), 'subject_request') returning event_id""",
                   (mine, subject))  # a forged event naming another tenant's subject under my tenant
    try:
        assert _totals(reader, mine, None) == before
    finally:
        _admin(conn, "delete from raw.consent_events where event_id = %s returning 1", (added[0][0],))


# ----------------------------------------------------------------------------------------------
# The reader cannot widen its scope

def _fails(reader, tenant: str, scope: ReaderScope, sql: str, params=None) -> str:
    with pytest.raises(psycopg2.Error) as err:
        with warehouse.reader_transaction(reader, tenant, scope=scope) as cur:
            cur.execute(sql, params)
    return str(err.value)


NARROW = ReaderScope(verticals=("finance",), geo_scopes=("emea",))


@pytest.mark.parametrize("sql", [
    "insert into control.report_contexts (backend_pid, backend_start, tenant_id) values (pg_backend_pid(), now(), 'acme')",
    "update control.report_contexts set verticals = null, geo_scopes = null, include_withdrawn = true",
    "delete from control.report_contexts",
    "create or replace function rls.report_verticals() returns text[] language sql as $$ select null::text[] $$",
    "insert into raw.consent_events (tenant_id, subject_id, state, changed_at) values ('acme', 'x', 'granted', now())",
    "alter policy governed_access on analytics.incidents_v1 using (true)",
])
def test_the_reader_cannot_write_its_context_or_the_rules(built, reader, tenant_ids, sql):
    message = _fails(reader, tenant_ids[0], NARROW, sql)
    assert "permission denied" in message or "must be owner" in message or "read-only transaction" in message
    # nor outside a report transaction, where nothing is read only: the role itself may not
    with pytest.raises(psycopg2.Error) as err:
        with reader, reader.cursor() as cur:
            cur.execute(sql)
    assert "permission denied" in str(err.value) or "must be owner" in str(err.value)


def test_settings_and_another_backends_token_widen_nothing(built, conn, reader, tenant_ids):
    tenant = tenant_ids[0]
    narrow = _seen_keys(reader, "incidents", tenant, NARROW)
    assert narrow == _expected_keys(conn, "incidents", tenant, verticals=("finance",), regions=("emea",))
    with warehouse.reader_connection() as sibling_conn, \
            warehouse.reader_transaction(sibling_conn, tenant, scope=ReaderScope(include_withdrawn=True)) as sibling:
        sibling.execute("select current_setting('app.report_context')")
        wide_token = sibling.fetchone()[0]  # a live, wider context of the same tenant on another backend
        with warehouse.reader_transaction(reader, tenant, scope=NARROW) as cur:
            cur.execute("select set_config('app.report_context', %s, true)", (wide_token,))
            cur.execute("select rls.report_tenant(), rls.report_verticals(), rls.report_geo_scopes(),"
                        " rls.report_include_withdrawn(), rls.withdrawn_subjects()")
            assert cur.fetchone() == (None, None, None, False, [])
            cur.execute(f"select count(*) from {relation('incidents')}")
            assert cur.fetchone()[0] == 0
    with warehouse.reader_transaction(reader, tenant, scope=NARROW) as cur:
        for forged in ("select set_config('app.tenant_id', 'x', true)", "set local app.verticals = 'healthcare'",
                       "set local app.report_context = ''"):
            cur.execute(forged)
        cur.execute(f"select count(*) from {relation('incidents')}")
        assert cur.fetchone()[0] == 0
    assert _seen_keys(reader, "incidents", tenant, NARROW) == narrow


def test_the_context_functions_answer_only_for_their_own_backend(built, reader, tenant_ids):
    scope = ReaderScope(verticals=("finance", "healthcare"), geo_scopes=("amer",), include_withdrawn=True)
    with warehouse.reader_transaction(reader, tenant_ids[0], scope=scope) as cur:
        cur.execute("select rls.report_tenant(), rls.report_verticals(), rls.report_geo_scopes(),"
                    " rls.report_include_withdrawn()")
        assert cur.fetchone() == (tenant_ids[0], ["finance", "healthcare"], ["amer"], True)
    with reader, reader.cursor() as cur:  # after the transaction: no context at all
        cur.execute("select rls.report_tenant(), rls.report_include_withdrawn(), rls.withdrawn_subjects()")
        assert cur.fetchone() == (None, False, [])


@pytest.mark.parametrize("bad", [
    dict(verticals=()), dict(geo_scopes=()), dict(verticals="finance"), dict(verticals=("Finance; drop",)),
    dict(geo_scopes=(None,)), dict(include_withdrawn="yes"),
])
def test_a_malformed_scope_is_refused(bad):
    with pytest.raises(ValueError):
        ReaderScope(**bad)


def test_scope_must_be_a_reader_scope(built, reader, tenant_ids):
    with pytest.raises(warehouse.WarehouseError):
        with warehouse.reader_transaction(reader, tenant_ids[0], scope={"verticals": None}):
            pass
