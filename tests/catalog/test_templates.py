"""The six standard templates: each runs end to end, stays inside its tenant, and its numbers
agree with the raw source data recomputed here without dbt.

The isolation test is generated from the catalog: a seventh template file gets it for free.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import openpyxl
import pytest
from pypdf import PdfReader

from orchestration.catalog import templates as catalog
from orchestration.metrics import dbt_manifest
from orchestration.runs import engine, failures, publish
from orchestration.runs.periods import period_window
from orchestration.runs.request import ReportRequest

from ..conftest import PERIOD, analyst
from ..helpers.isolation import hostile_sibling_fixture  # noqa: F401  (registers the fixture)

STANDARD = ["incident_summary", "sla_performance", "attack_coverage", "connector_health",
            "analyst_throughput", "compliance_evidence_summary"]
# A full ISO week inside the 30 days of connector health the sample data holds.
PERIODS = {"monthly": PERIOD, "weekly": "2026-06-22"}
TEMPLATES = catalog.load_all()
# Run for one tenant: a platform-wide template (reporting_kpis) runs only for the platform
# partition; tests/kpis/test_kpi_models.py runs it.
TENANT_TEMPLATES = [t for t in TEMPLATES if t.scope == "tenant"]


def manager(tenant: str) -> str:
    return f"manager@{tenant}.example"


@pytest.fixture(scope="module")
def published(built, tenant_ids, hostile_sibling):
    """Every template, run once for the first tenant while the other tenants' data is present,
    and a hostile custom template of another tenant (helpers/isolation.py) too."""
    cache: dict[str, publish.Published] = {}

    def get(template: catalog.Template) -> publish.Published:
        if template.key not in cache:
            request = ReportRequest.for_period(template, tenant_ids[0], PERIODS[template.cadence],
                                               requester=manager(tenant_ids[0]))
            cache[template.key] = engine.run_report(template, request)
        return cache[template.key]

    return get


def section_rows(result: publish.Published, section: str) -> list[dict]:
    name = next(f["name"] for f in result.manifest["files"] if f["format"] == "json")
    data = json.loads((result.location / name).read_text())
    return next(s for s in data["sections"] if s["name"] == section)["rows"]


def file_texts(result: publish.Published) -> dict[str, str]:
    """What a reader of each format sees, as text. PDF text loses its line breaks, so all
    whitespace is removed there (and from what is looked for)."""
    texts = {}
    for path in result.location.iterdir():
        if path.suffix in (".csv", ".json") and path.name != "manifest.json":
            texts[path.suffix] = path.read_text()
        elif path.suffix == ".xlsx":
            book = openpyxl.load_workbook(path, read_only=True)
            texts[".xlsx"] = "\n".join(
                str(value) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)
                for value in row if value is not None
            )
            book.close()
        elif path.suffix == ".pdf":
            text = "".join(page.extract_text() for page in PdfReader(path).pages)
            texts[".pdf"] = re.sub(r"\s+", "", text)
    return texts


def test_the_six_standard_templates_are_in_the_catalog():
    keys = {t.key for t in TEMPLATES}
    assert set(STANDARD) <= keys
    for template in TEMPLATES:
        assert template.key_figures and template.charts, template.label
        assert template.sections and all(s.columns for s in template.sections)
        assert template.retention_days > 0 and template.expectation_suite == template.key
    cadences = {t.key: t.cadence for t in TEMPLATES}
    assert cadences["connector_health"] == "weekly" and cadences["incident_summary"] == "monthly"
    sensitivity = {t.key: t.sensitivity for t in TEMPLATES}
    assert sensitivity["analyst_throughput"] == "confidential"
    assert sensitivity["compliance_evidence_summary"] == "restricted"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.key)
def test_template_reads_only_metric_and_mart_models_and_its_metrics_are_defined(manifest_path, template):
    manifest = dbt_manifest.load_manifest()
    for name, version in template.models_read():
        info = dbt_manifest.model(name, version, manifest)
        assert info.relation.startswith('"analytics".'), f"{template.key} reads {info.relation}"
    assert template.metrics
    for metric in template.metrics:
        definition = dbt_manifest.metric_definition(metric.id, metric.model, metric.version, manifest)
        for field in ("owner", "formula", "formula_version", "unit", "grain"):
            assert definition.get(field), f"{metric.id}: no {field}"
        assert (metric.model, metric.version) in template.models_read(), f"{metric.id} is not read by a section"


@pytest.mark.parametrize("template", TENANT_TEMPLATES, ids=lambda t: t.key)
def test_tenant_isolation(published, conn, tenant_ids, template):
    """Run for tenant A with B's data present: no B value reaches any format."""
    mine, others = tenant_ids[0], tenant_ids[1:]
    with conn.cursor() as cur:
        for name, version in template.models_read():
            cur.execute(f"select count(*) from {dbt_manifest.model(name, version).relation} where tenant_id = any(%s)",
                        (others,))
            assert cur.fetchone()[0] > 0, f"no other-tenant rows in {name}: the test would prove nothing"
        cur.execute("select tenant_id, name from raw.tenants union all "
                    "select tenant_id, analyst_name from staging.stg_analysts")
        names: dict[str, set[str]] = {}
        for tenant, name in cur.fetchall():
            names.setdefault(tenant, set()).add(name)
    conn.rollback()
    foreign = set(others) | set().union(*(names[t] for t in others)) - names[mine]

    result = published(template)
    texts = file_texts(result)
    assert set(texts) == {f".{f}" for f in template.formats}
    for suffix, text in texts.items():
        squeeze = (lambda s: re.sub(r"\s+", "", s)) if suffix == ".pdf" else (lambda s: s)
        assert squeeze(mine) in text, f"{suffix} does not even name its own tenant"
        leaked = sorted(value for value in foreign if squeeze(value) in text)
        assert not leaked, f"{template.key} {suffix} shows other tenants' values: {leaked}"


@pytest.mark.parametrize("template", TENANT_TEMPLATES, ids=lambda t: t.key)
def test_every_template_publishes_all_formats_with_a_passed_gate(published, template):
    result = published(template)
    assert result.manifest["gate_b"]["passed"] is True
    assert {f["format"] for f in result.manifest["files"]} == set(template.formats)
    for section in template.sections:
        if section.mandatory:
            assert result.manifest["row_counts"][section.name] >= 1, section.name
    header = next(csv.reader(io.StringIO(next(result.location.glob("*.csv")).read_text())))
    assert header == [c.name for c in template.section(template.primary_section).columns]


def test_confidential_and_restricted_templates_refuse_analysts(tenant_ids, conn):
    for key in ("analyst_throughput", "compliance_evidence_summary"):
        template = catalog.load(key)
        request = ReportRequest.for_period(template, tenant_ids[0], PERIOD, requester=analyst(tenant_ids[0]))
        with pytest.raises(failures.RunFailed) as failed:
            engine.run_report(template, request)
        assert failed.value.failure_class == "policy_violation"
        assert "none of the roles this template allows to run" in failed.value.diagnosis
        with conn.cursor() as cur:
            cur.execute("select count(*) from control.audit_log where correlation_id = %s and action = 'run.denied'",
                        (failed.value.run_id,))
            assert cur.fetchone()[0] == 1
        conn.rollback()


# ------------------------------------------------------- numbers, recomputed from raw without dbt


def window(key: str):
    template = catalog.load(key)
    return period_window(template.cadence, PERIODS[template.cadence])[1:]


def raw_query(conn, sql: str, **params) -> list[tuple]:
    with conn, conn.cursor() as cur:
        cur.execute("set local time zone 'UTC'")
        cur.execute(sql, params)
        return cur.fetchall()


def test_connector_health_matches_raw_observations(published, conn, tenant_ids):
    tenant = tenant_ids[0]
    start, end = window("connector_health")
    assert (start.weekday(), (end - start).days) == (0, 7)  # Monday to Sunday
    result = published(catalog.load("connector_health"))
    expected = raw_query(conn, """
        select connector_id, count(*), round(100.0 * count(*) filter (where status <> 'down') / count(*), 2),
               count(*) filter (where status = 'down'), sum(events_ingested)
        from raw.connector_health_events
        where tenant_id = %(t)s and observed_at >= %(s)s and observed_at < %(e)s
        group by connector_id order by connector_id""", t=tenant, s=start, e=end)
    rows = sorted(section_rows(result, "by_connector"), key=lambda r: r["connector_id"])
    got = [(r["connector_id"], r["observations"], r["availability_pct"], r["down_hours"], r["events_ingested"])
           for r in rows]
    assert [(c, n, float(a), d, int(e)) for c, n, a, d, e in expected] == [
        (c, n, float(a), d, int(e)) for c, n, a, d, e in got]
    assert all(n == 7 * 24 for _, n, *_ in got)  # hourly checks, every hour of the week
    daily = section_rows(result, "daily_health")
    assert [r["day"] for r in daily] == [(start + dt.timedelta(days=i)).isoformat() for i in range(7)]
    pdf = "".join(p.extract_text() for p in PdfReader(next(result.location.glob("*.pdf"))).pages)
    assert "Week of 22 Jun 2026" in pdf


def test_analyst_throughput_matches_raw_incidents(published, conn, tenant_ids):
    tenant = tenant_ids[0]
    start, end = window("analyst_throughput")
    result = published(catalog.load("analyst_throughput"))
    expected = raw_query(conn, """
        select assignee_id,
               count(*) filter (where opened_at >= %(s)s and opened_at < %(e)s),
               count(*) filter (where resolved_at >= %(s)s and resolved_at < %(e)s),
               count(*) filter (where opened_at < %(e)s and (resolved_at is null or resolved_at >= %(e)s))
        from raw.incidents where tenant_id = %(t)s and assignee_id is not null
        group by assignee_id""", t=tenant, s=start, e=end)
    expected = {a: (x, y, z) for a, x, y, z in expected if x or y or z}
    got = {r["analyst_id"]: (r["incidents_assigned"], r["incidents_resolved"], r["open_assigned_at_end"])
           for r in section_rows(result, "by_analyst")}
    assert got == expected
    names = dict(raw_query(conn, "select analyst_id, name from raw.analysts where tenant_id = %(t)s", t=tenant))
    assert {r["analyst_id"]: r["analyst_name"] for r in section_rows(result, "by_analyst")} == {
        a: names[a] for a in got}
    (figures,) = section_rows(result, "key_figures")
    assert figures["incidents_resolved"] == sum(v[1] for v in expected.values())


def test_attack_coverage_matches_raw_alerts_incidents_and_rules(published, conn, tenant_ids):
    tenant = tenant_ids[0]
    start, end = window("attack_coverage")
    result = published(catalog.load("attack_coverage"))
    seen = {r[0] for r in raw_query(conn, """
        select attack_technique_id from raw.alerts
        where tenant_id = %(t)s and created_at >= %(s)s and created_at < %(e)s and attack_technique_id is not null
        union
        select attack_technique_id from raw.incidents
        where tenant_id = %(t)s and opened_at >= %(s)s and opened_at < %(e)s and attack_technique_id is not null""",
        t=tenant, s=start, e=end)}
    covered = {r[0] for r in raw_query(conn, """
        select technique_id from raw.detections where tenant_id = %(t)s and enabled and created_at < %(e)s""",
        t=tenant, e=end)}
    rows = section_rows(result, "technique_coverage")
    assert {r["technique_id"] for r in rows if r["seen"]} == seen
    assert {r["technique_id"] for r in rows if r["covered"]} == covered
    gaps = [r["technique_id"] for r in rows if r["seen"] and not r["covered"]]
    assert gaps == [r["technique_id"] for r in rows[:len(gaps)]]  # gaps come first
    (figures,) = section_rows(result, "key_figures")
    assert figures["techniques_seen"] == len(seen)
    assert figures["uncovered_seen"] == len(seen - covered)
    csv_rows = list(csv.DictReader(io.StringIO(next(result.location.glob("*.csv")).read_text())))
    assert {r["seen"] for r in csv_rows} <= {"true", "false"}  # not Postgres' t/f


def test_compliance_status_matches_raw_evidence(published, conn, tenant_ids):
    tenant = tenant_ids[0]
    start, end = window("compliance_evidence_summary")
    result = published(catalog.load("compliance_evidence_summary"))
    expected = dict(raw_query(conn, """
        select c.control_id,
               case when max(e.collected_at) is null then 'missing'
                    when max(e.collected_at)::date >= %(e)s::date - 90 then 'current'
                    else 'stale' end
        from raw.compliance_controls c
        left join raw.compliance_evidence e
          on e.tenant_id = c.tenant_id and e.control_id = c.control_id
         and e.status <> 'rejected' and e.collected_at < %(e)s
        where c.tenant_id = %(t)s
        group by c.control_id""", t=tenant, e=end))
    rows = section_rows(result, "control_status")
    assert {r["control_id"]: r["status"] for r in rows} == expected
    assert len(set(expected.values())) >= 2  # the sample data has current and not-current controls
    order = ["missing", "stale", "current"]
    assert [order.index(r["status"]) for r in rows] == sorted(order.index(r["status"]) for r in rows)
    (figures,) = section_rows(result, "key_figures")
    assert figures["controls"] == len(expected)
    assert figures["controls_current"] == sum(1 for s in expected.values() if s == "current")


def test_sla_breaches_match_raw_incidents(published, conn, tenant_ids):
    tenant = tenant_ids[0]
    start, end = window("sla_performance")
    result = published(catalog.load("sla_performance"))
    expected = {s: (a, r) for s, a, r in raw_query(conn, """
        select severity,
               count(*) filter (where acknowledged_at - opened_at > sla_ack_minutes * interval '1 minute'),
               count(*) filter (where resolved_at - opened_at > sla_resolve_minutes * interval '1 minute')
        from raw.incidents where tenant_id = %(t)s and opened_at >= %(s)s and opened_at < %(e)s
        group by severity""", t=tenant, s=start, e=end)}
    got = {r["severity"]: (r["ack_breaches"], r["resolve_breaches"]) for r in section_rows(result, "sla_by_severity")}
    assert got == expected
    by_team = section_rows(result, "breaches_by_team")
    assert sum(r["resolve_breaches"] for r in by_team) == sum(v[1] for v in expected.values())
