"""The governed sample data: verticals, regions, sites, suspension, subjects, consent histories
and awareness measurements, read back from the session's seeded raw tables."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json

import pytest

from orchestration.dev import seed as seeding
from orchestration.dev.sample_data.programmes_vocabulary import AWARENESS_PROGRAMMES, NAMED_VERTICALS, REGIONS
from orchestration.dev.sample_data.world import World

# sha256 of the parsed CSV records each table had before the governed columns were added
# (World(4, 5, 2025-03-01), 20,000 incidents): the new columns must not change a single value.
BEFORE = {
    "incidents": (13, "cad0b9e071dd15f841ac670ef12104d9797f1d4873be19e2675a180c207bfcd6"),
    "alerts": (9, "9e7e50abedda6ccc9fd576b961cfe298c6a1e9e3eed87888e0ea5133f9da25b7"),
    "connectors": (6, "86001f521a31efc4cf372815e8a36de931050daf39591c0062d84c76b3b15fa9"),
    "compliance_controls": (6, "05d358abccfb05d3d09b4c8a80bb61faf1038ac009127f6d2eac030203649fa9"),
}


def _rows(conn, sql: str, params=None) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _one(conn, sql: str, params=None):
    return _rows(conn, sql, params)[0][0]


def test_existing_columns_keep_every_value():
    world = World(4, 5, dt.date(2025, 3, 1))
    for table, columns, chunks in seeding.loads(world, 20_000):
        if table not in BEFORE:
            continue
        width, digest = BEFORE[table]
        records = list(csv.reader(io.StringIO(b"".join(chunks()).decode(), newline="")))
        assert len(columns) > width
        old = [r[:width] for r in records]
        assert hashlib.sha256(json.dumps(old).encode()).hexdigest() == digest, table


def test_tenants_have_their_verticals_sites_and_regions(built, conn, tenant_ids):
    for tenant in tenant_ids:
        verticals = {r[0] for r in _rows(conn, "select vertical from raw.sites where tenant_id = %s", (tenant,))}
        regions = {r[0] for r in _rows(conn, "select region from raw.sites where tenant_id = %s", (tenant,))}
        assert verticals == set(NAMED_VERTICALS[tenant])
        assert len(regions) >= 2 and regions <= set(REGIONS)
    assert len(NAMED_VERTICALS[tenant_ids[0]]) == 3  # a multi-vertical programme to intersect
    assert _one(conn, "select count(*) from raw.sites where country is null or name = ''") == 0


def test_every_incident_is_at_a_site_of_its_tenant_with_its_vertical_and_region(built, conn):
    assert _one(conn, """select count(*) from raw.incidents i left join raw.sites s using (site_id)
                         where s.site_id is null or s.tenant_id <> i.tenant_id
                            or s.vertical is distinct from i.vertical or s.region is distinct from i.region""") == 0


def test_suspension_and_subjects(built, conn):
    total = _one(conn, "select count(*) from raw.incidents")
    assert _one(conn, """select count(*) from raw.incidents where suspension_status not in ('active', 'suspended')
                         or (suspension_reason is null) <> (suspension_status = 'active')""") == 0
    suspended = _one(conn, "select count(*) from raw.incidents where suspension_status = 'suspended'")
    assert 0.01 < suspended / total < 0.06
    with_subject = _one(conn, "select count(*) from raw.incidents where subject_id is not null")
    assert 0.33 < with_subject / total < 0.47
    assert _one(conn, """select count(*) from raw.incidents i left join raw.subjects p using (subject_id)
                         where i.subject_id is not null and (p.subject_id is null or p.tenant_id <> i.tenant_id)""") == 0


def test_alerts_connectors_and_controls_carry_vertical_and_region(built, conn):
    # escalated: the incident's; not escalated: the connector's home site's
    assert _one(conn, """select count(*) from raw.alerts a join raw.incidents i using (incident_id)
                         where (a.vertical, a.region) <> (i.vertical, i.region)""") == 0
    assert _one(conn, """select count(*) from raw.alerts a join raw.connectors c using (connector_id)
                         where a.incident_id is null and (a.vertical, a.region) <> (c.vertical, c.region)""") == 0
    for table in ("alerts", "connectors", "compliance_controls"):
        assert _one(conn, f"select count(*) from raw.{table} where vertical is null or region is null") == 0
        assert _one(conn, f"""select count(*) from raw.{table} t where not exists (select 1 from raw.sites s
                              where s.tenant_id = t.tenant_id and s.vertical = t.vertical)""") == 0


LATEST = """select distinct on (subject_id) subject_id, state from raw.consent_events
            order by subject_id, changed_at desc, event_id desc"""


def test_consent_histories(built, conn):
    subjects = _one(conn, "select count(*) from raw.subjects")
    first = _rows(conn, """select distinct on (subject_id) state, reason from raw.consent_events
                           order by subject_id, changed_at, event_id""")
    assert len(first) == subjects and {r[0] for r in first} == {"granted"}
    withdrawn = _one(conn, f"select count(*) from ({LATEST}) l where state = 'withdrawn'")
    assert 0.04 < withdrawn / subjects < 0.12
    regranted = _one(conn, f"""select count(*) from ({LATEST}) l where state = 'granted' and exists
                               (select 1 from raw.consent_events e where e.subject_id = l.subject_id
                                and e.state = 'withdrawn')""")
    assert regranted > 0
    assert _one(conn, """select count(*) from raw.consent_events e join raw.subjects s using (subject_id)
                         where e.tenant_id <> s.tenant_id""") == 0


def test_awareness_measurements_are_longitudinal(built, conn):
    assert {r[0] for r in _rows(conn, "select distinct programme from raw.awareness_measurements")} == set(
        AWARENESS_PROGRAMMES)
    assert {r[0] for r in _rows(conn, "select distinct measurement_type from raw.awareness_measurements")} == {
        "baseline", "follow_up", "outcome"}
    assert _one(conn, "select count(*) from raw.awareness_measurements where score not between 0 and 100") == 0
    first = _rows(conn, """select distinct on (subject_id, programme) measurement_type from raw.awareness_measurements
                           order by subject_id, programme, measured_at""")
    assert {r[0] for r in first} == {"baseline"}
    assert _one(conn, """select count(*) from raw.awareness_measurements m join raw.subjects s using (subject_id)
                         where (m.tenant_id, m.vertical, m.region) <> (s.tenant_id, s.vertical, s.region)""") == 0
    # the programme works: phishing clicks fall from baseline to outcome
    rates = dict(_rows(conn, """select measurement_type, avg(clicked::int) from raw.awareness_measurements
                                where programme = 'phishing_simulation' group by 1"""))
    assert rates["outcome"] < rates["baseline"]


@pytest.mark.parametrize("table", ["sites", "subjects", "consent_events", "awareness_measurements"])
def test_new_tables_are_filled(built, table):
    assert built[table] > 0
