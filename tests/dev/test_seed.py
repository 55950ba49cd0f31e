"""The sample data generator: deterministic, idempotent, consistent, and fast to load.

Needs only a database (REPORTS_DATABASE_URL or the embedded server). Whatever the raw tables
held before this module ran is put back afterwards, so tests that read the session's seeded
data still see it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import subprocess
import sys
import textwrap

import pytest

from orchestration.db import warehouse
from orchestration.dev import seed as seeding
from orchestration.dev.sample_data import incidents, vocabulary
from orchestration.settings import REPO_ROOT

END = dt.date(2026, 7, 1)
START = END - dt.timedelta(days=182)
TENANTS = 3
INCIDENTS = 3_000
SEED = 11
ARGS = dict(tenants=TENANTS, incidents=INCIDENTS, seed=SEED, end_date=END)

# Every raw table and the key that orders it, for fingerprints.
KEYS = {
    "tenants": "tenant_id", "analysts": "analyst_id", "attack_techniques": "technique_id",
    "incidents": "incident_id", "alerts": "alert_id", "detections": "detection_id",
    "connectors": "connector_id", "connector_health_events": "event_id",
    "compliance_controls": "tenant_id, control_id", "compliance_evidence": "evidence_id",
    "sites": "site_id", "subjects": "subject_id", "consent_events": "event_id",
    "awareness_measurements": "measurement_id",
}
BACKUP_SCHEMA = f"seed_test_backup_{os.getpid()}"


@pytest.fixture(scope="module")
def conn():
    warehouse.ensure_database()
    c = warehouse.connect()
    yield c
    c.close()


@pytest.fixture(scope="module", autouse=True)
def preserve_raw(conn):
    """Set aside what the raw tables hold and put it back when the module is done."""
    with conn, conn.cursor() as cur:
        present = [t for t in KEYS if _exists(cur, f"raw.{t}")]
        cur.execute(f"create schema {BACKUP_SCHEMA}")
        for table in present:
            cur.execute(f"create table {BACKUP_SCHEMA}.{table} as table raw.{table}")
    yield
    conn.rollback()
    with conn, conn.cursor() as cur:
        for table in KEYS:
            if _exists(cur, f"raw.{table}"):
                cur.execute(f"truncate raw.{table}")
                if table in present:
                    cur.execute(f"insert into raw.{table} select * from {BACKUP_SCHEMA}.{table}")
        cur.execute(f"drop schema {BACKUP_SCHEMA} cascade")


@pytest.fixture(scope="module")
def seeded(conn, preserve_raw):
    """The module's sample data; a test that seeds something else seeds this back."""
    return seeding.seed(conn, **ARGS)


def _exists(cur, name: str) -> bool:
    cur.execute("select to_regclass(%s) is not null", (name,))
    return cur.fetchone()[0]


def _one(conn, sql: str, params=None):
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def _rows(conn, sql: str, params=None) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _fingerprint(conn, table: str) -> str:
    return _one(conn, f"select md5(string_agg(t::text, '|' order by {KEYS[table]})) from raw.{table} t")


def _fingerprints(conn) -> dict[str, str]:
    return {table: _fingerprint(conn, table) for table in KEYS}


def _counts(conn) -> dict[str, int]:
    return {table: _one(conn, f"select count(*) from raw.{table}") for table in KEYS}


# ----------------------------------------------------------------------------------------------
# API

def test_tenant_ids_are_named_slugs_then_numbered():
    assert seeding.tenant_ids(3) == ["acme", "globex", "initech"]
    assert seeding.tenant_ids(10) == ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne",
                                      "wonka", "tenant-009", "tenant-010"]
    for tenant_id in seeding.tenant_ids(120):
        assert warehouse.validate_tenant_id(tenant_id) == tenant_id


def test_default_end_date_is_today():
    assert seeding.default_end_date(dt.date(2026, 3, 17)) == dt.date(2026, 3, 17)
    assert seeding.default_end_date(dt.date(2026, 1, 1)) == dt.date(2026, 1, 1)
    today = dt.datetime.now(dt.UTC).date()
    assert seeding.default_end_date() == today


def test_counts_match_tables(conn, seeded):
    assert seeded == _counts(conn)
    assert list(seeded) == list(KEYS)
    assert seeded["tenants"] == TENANTS
    assert seeded["incidents"] == INCIDENTS
    assert seeded["attack_techniques"] >= 35
    # About 1.5 alerts per incident, about 20% of them never escalated.
    assert 1.35 * INCIDENTS < seeded["alerts"] < 1.65 * INCIDENTS
    unlinked = _one(conn, "select count(*) from raw.alerts where incident_id is null")
    assert 0.15 < unlinked / seeded["alerts"] < 0.25


# ----------------------------------------------------------------------------------------------
# Determinism and idempotence

def test_same_arguments_same_bytes_and_no_duplicates(conn, seeded):
    before = _fingerprints(conn)
    assert seeding.seed(conn, **ARGS) == seeded
    assert _fingerprints(conn) == before
    assert _counts(conn) == seeded
    for table, key in KEYS.items():
        assert _one(conn, f"select count(distinct ({key})) from raw.{table}") == seeded[table]


def test_different_seed_gives_different_data(conn, seeded):
    before = _fingerprint(conn, "incidents")
    try:
        seeding.seed(conn, **{**ARGS, "seed": SEED + 1})
        assert _fingerprint(conn, "incidents") != before
        assert _one(conn, "select count(*) from raw.incidents") == INCIDENTS
    finally:
        seeding.seed(conn, **ARGS)
    assert _fingerprint(conn, "incidents") == before


def test_does_not_touch_the_global_random_generator(conn, seeded):
    random.seed(1234)
    state = random.getstate()
    seeding.seed(conn, **ARGS)
    assert random.getstate() == state


def test_generated_bytes_do_not_depend_on_the_process():
    """Hash randomisation or anything else per-process must not change the data."""
    script = textwrap.dedent("""
        import datetime as dt, hashlib, sys
        from orchestration.dev import seed as s
        from orchestration.dev.sample_data.world import World
        world = World(4, 5, dt.date(2025, 3, 1))
        digest = hashlib.md5()
        for table, columns, chunks in s.loads(world, 2000):
            digest.update(table.encode())
            for chunk in chunks():
                digest.update(chunk)
        print(digest.hexdigest())
    """)
    digests = set()
    for hash_seed in ("0", "1", "random"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                             check=True, cwd=REPO_ROOT)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


# ----------------------------------------------------------------------------------------------
# Incidents

def test_incident_lifecycle_is_consistent(conn, seeded):
    violations = _one(conn, """
        select count(*) from raw.incidents where not (
            status in ('new', 'acknowledged', 'in_progress', 'resolved', 'closed')
            and severity in ('critical', 'high', 'medium', 'low')
            and (acknowledged_at is null) = (status = 'new')
            and (resolved_at is not null) = (status in ('resolved', 'closed'))
            and (assignee_id is null) = (status = 'new')
            and coalesce(acknowledged_at >= opened_at, true)
            and coalesce(resolved_at >= acknowledged_at, true)
            and _loaded_at >= greatest(opened_at, acknowledged_at, resolved_at)
            and (_loaded_at <= greatest(opened_at, acknowledged_at, resolved_at) + interval '30 minutes')
        )""")
    assert violations == 0


def test_incident_timestamps_inside_the_window(conn, seeded):
    lo, hi = dt.datetime(START.year, START.month, START.day, tzinfo=dt.UTC), \
        dt.datetime(END.year, END.month, END.day, tzinfo=dt.UTC)
    first, last, latest = _rows(conn, """
        select min(opened_at), max(opened_at),
               max(greatest(opened_at, acknowledged_at, resolved_at, _loaded_at)) from raw.incidents""")[0]
    assert lo <= first and last < hi and latest < hi
    # Spread over the whole window, not bunched at one end.
    assert first < lo + dt.timedelta(days=2) and last > hi - dt.timedelta(days=2)


def test_incident_ids_follow_opening_time(conn, seeded):
    out_of_order = _one(conn, """
        select count(*) from (
            select opened_at < lag(opened_at) over (order by incident_id) as back from raw.incidents
        ) x where back""")
    assert out_of_order == 0
    assert _rows(conn, "select min(incident_id), max(incident_id) from raw.incidents")[0] == (1, INCIDENTS)


def test_sla_targets_follow_severity(conn, seeded):
    rows = _rows(conn, "select distinct severity, sla_ack_minutes, sla_resolve_minutes from raw.incidents")
    assert sorted(rows) == sorted(
        (s, vocabulary.SLA_ACK_MINUTES[s], vocabulary.SLA_RESOLVE_MINUTES[s]) for s in vocabulary.SEVERITIES)


def test_assignee_and_technique_exist_and_match_tenant(conn, seeded):
    assert _one(conn, """
        select count(*) from raw.incidents i left join raw.analysts a on a.analyst_id = i.assignee_id
        where i.assignee_id is not null and (a.tenant_id is distinct from i.tenant_id)""") == 0
    assert _one(conn, """
        select count(*) from raw.incidents i left join raw.attack_techniques t
          on t.technique_id = i.attack_technique_id
        where t.technique_id is null""") == 0
    assert _one(conn, """
        select count(*) from raw.incidents i left join raw.tenants t using (tenant_id)
        where t.tenant_id is null""") == 0


def test_every_tenant_has_incidents_every_month_and_volumes_differ(conn, seeded):
    per_month = _rows(conn, """
        select tenant_id, count(distinct date_trunc('month', opened_at at time zone 'UTC')), count(*)
        from raw.incidents where opened_at >= '2026-01-01' group by 1""")
    assert {t for t, _, _ in per_month} == set(seeding.tenant_ids(TENANTS))
    assert all(months == 6 for _, months, _ in per_month)
    volumes = sorted(n for _, _, n in per_month)
    assert volumes[-1] > 1.3 * volumes[0]


def test_severity_mix_and_technique_skew(conn, seeded):
    mix = dict(_rows(conn, "select severity, count(*)::float / %s from raw.incidents group by 1", (INCIDENTS,)))
    for severity, weight in zip(vocabulary.SEVERITIES, vocabulary.SEVERITY_WEIGHTS, strict=True):
        assert abs(mix[severity] - weight / 100) < 0.04, (severity, mix[severity])
    shares = [n for (n,) in _rows(
        conn, "select count(*) from raw.incidents group by attack_technique_id order by 1 desc")]
    assert len(shares) >= 15
    assert shares[0] > 5 * shares[len(shares) // 2]


def test_recent_incidents_are_more_often_open_and_sla_is_sometimes_breached(conn, seeded):
    recent, older = _rows(conn, """
        select avg((status not in ('resolved', 'closed'))::int) filter (where opened_at >= %(end)s::date - 7),
               avg((status not in ('resolved', 'closed'))::int) filter (where opened_at < %(end)s::date - 30)
        from raw.incidents""", {"end": END})[0]
    assert recent > 3 * older
    assert older < 0.1
    ack_breach, resolve_breach = _rows(conn, """
        select avg((acknowledged_at - opened_at > make_interval(mins => sla_ack_minutes))::int),
               avg((resolved_at - opened_at > make_interval(mins => sla_resolve_minutes))::int)
        from raw.incidents""")[0]
    assert 0.02 < ack_breach < 0.35
    assert 0.05 < resolve_breach < 0.45
    statuses = {s for (s,) in _rows(conn, "select distinct status from raw.incidents")}
    assert statuses == {"new", "acknowledged", "in_progress", "resolved", "closed"}


def test_some_titles_are_tricky_at_the_default_rate(conn, seeded):
    tricky = _one(conn, "select count(*) from raw.incidents where title = any(%s)", (vocabulary.TRICKY_TITLES,))
    assert 1 <= tricky <= 20  # about 1 in 500 of 3,000
    normal = {title for (title,) in _rows(conn, "select distinct title from raw.incidents")}
    normal -= set(vocabulary.TRICKY_TITLES)
    assert all(title.isprintable() and title.strip() == title for title in normal)


def test_tricky_titles_arrive_byte_exact(conn, seeded, monkeypatch):
    monkeypatch.setattr(incidents, "TRICKY_TITLE_SHARE", 0.2)  # read where titles are drawn
    try:
        seeding.seed(conn, **ARGS)
        stored = _rows(conn, "select distinct title, md5(title), octet_length(title) from raw.incidents "
                             "where title = any(%s)", (vocabulary.TRICKY_TITLES,))
        assert {title for title, _, _ in stored} == set(vocabulary.TRICKY_TITLES)
        for title, digest, size in stored:
            assert digest == hashlib.md5(title.encode()).hexdigest()
            assert size == len(title.encode())
        # Nothing else was mangled into a near miss (stripped, unquoted, split at the newline).
        shares = _rows(conn, "select count(*) filter (where title = any(%s)), count(*) from raw.incidents",
                       (vocabulary.TRICKY_TITLES,))[0]
        assert 0.15 < shares[0] / shares[1] < 0.25
    finally:
        monkeypatch.undo()
        seeding.seed(conn, **ARGS)


# ----------------------------------------------------------------------------------------------
# Alerts and the other tables

def test_alerts_belong_to_their_tenant(conn, seeded):
    assert _one(conn, """
        select count(*) from raw.alerts a left join raw.connectors c using (connector_id)
        where c.tenant_id is distinct from a.tenant_id""") == 0
    assert _one(conn, """
        select count(*) from raw.alerts a join raw.incidents i using (incident_id)
        where i.tenant_id <> a.tenant_id
           or a.created_at > i.opened_at
           or a.created_at < i.opened_at - interval '2 hours'
           or a.attack_technique_id <> i.attack_technique_id""") == 0
    assert _one(conn, """
        select count(*) from raw.alerts a left join raw.incidents i using (incident_id)
        where a.incident_id is not null and i.incident_id is null""") == 0
    per_incident = _rows(conn, """
        select min(n), max(n), count(*) from (select incident_id, count(*) n from raw.alerts
        where incident_id is not null group by 1) x""")[0]
    assert per_incident == (1, 3, INCIDENTS)


def test_alert_timestamps_inside_the_window(conn, seeded):
    bad = _one(conn, """
        select count(*) from raw.alerts
        where created_at < %(start)s or _loaded_at >= %(end)s or _loaded_at < created_at
           or severity not in ('critical', 'high', 'medium', 'low')""", {"start": START, "end": END})
    assert bad == 0


def test_every_table_ends_before_end_date(conn, seeded):
    columns = _rows(conn, """
        select table_name, column_name from information_schema.columns
        where table_schema = 'raw' and data_type in ('timestamp with time zone', 'date')""")
    assert len(columns) >= 15
    for table, column in columns:
        assert _one(conn, f"select count(*) from raw.{table} where {column} >= %s", (END,)) == 0, (table, column)


def test_tenants_analysts_and_connectors(conn, seeded):
    for tenant_id, name, plan, timezone, created in _rows(
            conn, "select tenant_id, name, plan, timezone, created_at from raw.tenants"):
        assert tenant_id in seeding.tenant_ids(TENANTS) and name and name != tenant_id
        assert plan in ("standard", "enterprise") and timezone in vocabulary.TIMEZONES
        assert created.date() < START - dt.timedelta(days=60)
    for _tenant_id, analysts, teams, bad_emails in _rows(conn, """
            select tenant_id, count(*), count(distinct team),
                   count(*) filter (where email not like '%%@' || tenant_id || '.example.com'
                                       or email !~ '^[a-z0-9.-]+@')
            from raw.analysts group by 1"""):
        assert 8 <= analysts <= 40 and teams == 4 and bad_emails == 0
    assert _one(conn, "select count(*) - count(distinct email) from raw.analysts") == 0
    assert _one(conn, """select count(*) from raw.analysts a join raw.tenants t using (tenant_id)
                         where a.hired_at < t.created_at::date or a.hired_at >= %s""", (START,)) == 0
    for _tenant_id, connectors, kinds in _rows(conn, """
            select tenant_id, count(*), array_agg(distinct kind) from raw.connectors group by 1"""):
        assert 5 <= connectors <= 12
        assert {"edr", "siem"} <= set(kinds) <= set(vocabulary.CONNECTOR_KINDS)
    assert _one(conn, "select count(*) from raw.connectors where connector_id not like tenant_id || '-c%%'") == 0


def test_connector_health_is_hourly_with_outages(conn, seeded):
    connectors = _one(conn, "select count(*) from raw.connectors")
    assert seeded["connector_health_events"] == connectors * 30 * 24
    assert _one(conn, """
        select count(*) from raw.connector_health_events h left join raw.connectors c using (connector_id)
        where c.tenant_id is distinct from h.tenant_id
           or observed_at < %(end)s::timestamptz - interval '30 days' or observed_at >= %(end)s
           or extract(minute from observed_at) <> 0 or extract(second from observed_at) <> 0
           or (status = 'down') <> (events_ingested = 0) or latency_ms <= 0 or events_ingested < 0
           or h._loaded_at < observed_at or h._loaded_at >= %(end)s""", {"end": END}) == 0
    assert _one(conn, """select count(*) from (select connector_id, observed_at from raw.connector_health_events
                         group by 1, 2 having count(*) > 1) x""") == 0
    share = dict(_rows(conn, """select status, count(*)::float / sum(count(*)) over ()
                                from raw.connector_health_events group by 1"""))
    assert share["healthy"] > 0.85 and share.get("degraded", 0) > 0 and share.get("down", 0) > 0


def test_detections_controls_and_evidence(conn, seeded):
    assert _one(conn, """
        select count(*) from raw.detections d left join raw.attack_techniques t using (technique_id)
        where t.technique_id is null or d.created_at >= d._loaded_at""") == 0
    enabled = dict(_rows(conn, "select enabled, count(*) from raw.detections group by 1"))
    assert enabled.get(True, 0) > enabled.get(False, 0) > 0
    covered = [n for (n,) in _rows(conn, "select count(distinct technique_id) from raw.detections group by tenant_id")]
    assert len(covered) == TENANTS and all(5 <= n < len(vocabulary.TECHNIQUES) for n in covered)

    for n, frameworks in _rows(conn, "select count(*), array_agg(distinct framework) from raw.compliance_controls "
                                     "group by tenant_id"):
        assert 15 <= n <= 30
        assert set(frameworks) <= {"SOC2", "ISO27001", "NIST-CSF"}
    assert _one(conn, """
        select count(*) from raw.compliance_controls c left join raw.analysts a on a.analyst_id = c.owner_id
        where a.tenant_id is distinct from c.tenant_id or c.control_id not like c.framework || '-%%'""") == 0
    assert _one(conn, """
        select count(*) from raw.compliance_evidence e
        left join raw.compliance_controls c using (tenant_id, control_id)
        left join raw.analysts a on a.analyst_id = e.reviewer_id
        where c.control_id is null or a.tenant_id is distinct from e.tenant_id
           or e.status not in ('valid', 'expired', 'rejected')
           or e.collected_at < %(start)s or e.collected_at >= %(end)s""", {"start": START, "end": END}) == 0
    statuses = dict(_rows(conn, "select status, count(*) from raw.compliance_evidence group by 1"))
    assert set(statuses) == {"valid", "expired", "rejected"}
    assert seeded["compliance_evidence"] >= 2 * seeded["compliance_controls"]


# ----------------------------------------------------------------------------------------------
# Arguments and failures

def test_bad_arguments_change_nothing(conn, seeded):
    before = _fingerprint(conn, "incidents")
    for bad in (dict(tenants=0), dict(incidents=-1), dict(tenants="3")):
        with pytest.raises(ValueError):
            seeding.seed(conn, **{**ARGS, **bad})
    assert _fingerprint(conn, "incidents") == before


ALERT = "{},,2026-01-01 00:00:00+00,2026-01-01 00:00:00+00,acme-c01,rule,acme,T1566,low,finance,emea\n"


def _generator_breaks(world, n):
    yield from (ALERT.format(i) for i in range(1, 10))
    raise RuntimeError("generator broke")


def _duplicate_key(world, n):
    yield from (ALERT.format(i) for i in range(1, 200_000))
    yield ALERT.format(1)


@pytest.mark.parametrize("broken, error", [(_generator_breaks, "^generator broke$"), (_duplicate_key, "duplicate key")])
def test_failure_midway_keeps_the_previous_data(conn, seeded, monkeypatch, broken, error):
    before = _fingerprints(conn)
    monkeypatch.setattr(seeding, "alert_lines", broken)
    with pytest.raises(Exception, match=error):
        seeding.seed(conn, **{**ARGS, "seed": SEED + 2})
    assert conn.closed == 0
    assert _fingerprints(conn) == before


def test_zero_incidents_and_default_end_date(conn, seeded):
    try:
        counts = seeding.seed(conn, tenants=1, incidents=0)
        assert counts["incidents"] == counts["alerts"] == 0
        assert counts["tenants"] == 1 and counts["connector_health_events"] > 0
        counts = seeding.seed(conn, tenants=2, incidents=200)
        end = seeding.default_end_date()
        latest = _one(conn, "select max(greatest(opened_at, acknowledged_at, resolved_at, _loaded_at)) "
                            "from raw.incidents")
        assert latest.date() < end
        assert _one(conn, "select min(opened_at) from raw.incidents").date() >= end - dt.timedelta(days=182)
    finally:
        seeding.seed(conn, **ARGS)


@pytest.mark.parametrize("table", [t for t in seeding.TABLES if t not in ("tenants", "attack_techniques")])
def test_a_tenants_watermark_is_read_by_index(conn, seeded, table):
    """Freshness (max(_loaded_at) of the tenant, every run) and the late-data check of the
    corrections sensor read the loader watermark through an index, not by scanning the table."""
    with conn, conn.cursor() as cur:
        cur.execute("set local enable_seqscan = off")
        cur.execute(f"explain select max(_loaded_at) from raw.{table} where tenant_id = 'acme'")
        plan = " ".join(r[0] for r in cur.fetchall())
    assert "Index" in plan and "Seq Scan" not in plan, plan
