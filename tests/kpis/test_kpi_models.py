"""The KPI dbt models (dbt_project/models/kpis/) against kpis.compute, what row-level security
lets the reporting role read of them, the reporting_kpis template and the Dagster KPI asset.

The rows are tests/helpers/kpi_world.py's (fixture kpi_world): written on DAY for two new
tenants, then the KPI models rebuilt. So the platform's numbers of DAY are exactly those rows.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import dagster as dg
import openpyxl
import pytest
from pypdf import PdfReader

from orchestration.access import policy, tenants
from orchestration.access.tenants import PLATFORM
from orchestration.catalog import templates as catalog
from orchestration.db import warehouse
from orchestration.errors import Denied
from orchestration.exports.numbers import code_label
from orchestration.kpis import headline
from orchestration.kpis.compute import Rate
from orchestration.runs import engine
from orchestration.runs.failures import RunFailed
from orchestration.runs.periods import RequestError
from orchestration.runs.request import ReportRequest
from orchestration.services import evidence as evidence_service
from orchestration.services import kpis as kpi_service
from tests.helpers.kpi_world import DAY, PLATFORM_ADMIN

MODELS = ("kpi_daily", "kpi_daily_breakdown", "kpi_runs", "kpi_scopes")


def _read(tenant: str, sql: str) -> list[dict]:
    """Rows as the reporting role reads them in a report transaction for `tenant`."""
    with warehouse.reader_connection() as reader, warehouse.reader_transaction(reader, tenant) as cur:
        cur.execute(sql, {"day": DAY})
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _python(scope: str, actor: str = PLATFORM_ADMIN):
    start = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
    with warehouse.connection() as conn:
        return kpi_service.kpis(conn, actor=actor, tenant_id=None if scope == PLATFORM else scope, since=start,
                                now=start + dt.timedelta(days=1))


def _breakdown(rows: list[dict], kpi: str) -> dict[str, dict]:
    return {r["dimension"]: r for r in rows if r["kpi"] == kpi}


@pytest.mark.parametrize("who", ["a", "b", "platform"])
def test_dbt_daily_rows_agree_with_kpis_compute(kpi_world, who):
    scope = PLATFORM if who == "platform" else kpi_world[who]
    [row] = _read(scope, "select * from analytics.kpi_daily where day = %(day)s")
    parts = _read(scope, "select * from analytics.kpi_daily_breakdown where day = %(day)s")
    k = _python(scope)
    top = headline.headline(k)
    assert row["tenant_id"] == scope
    assert (row["runs_succeeded"], row["runs_ended"]) == (k.run_success.numerator, k.run_success.denominator)
    assert row["run_success_rate"] == pytest.approx(k.run_success.value)
    assert row["failure_rate"] == pytest.approx(top["failure_rate"])
    assert {c: Rate(r["numerator"], r["denominator"]) for c, r in _breakdown(parts, "failure_rate_by_class").items()} \
        == dict(k.failure_by_class)
    for column, spread in (("tick_to_start", k.lag_tick_to_start), ("start_to_published", k.lag_start_to_published)):
        assert (row[f"{column}_p50_seconds"], row[f"{column}_p95_seconds"], row[f"{column}_max_seconds"]) \
            == (spread.p50, spread.p95, spread.max), column
    assert {c: Rate(r["numerator"], r["denominator"])
            for c, r in _breakdown(parts, "delivery_success_rate_by_channel").items()} == dict(k.delivery_by_channel)
    assert row["delivery_success_rate"] == pytest.approx(top["delivery_success_rate"])
    assert (row["gate_b_failed"], row["gate_b_runs"]) == (k.gate_b_failure.numerator, k.gate_b_failure.denominator)
    assert {d: r["numerator"] for d, r in _breakdown(parts, "runs_by_template_version").items()} \
        == {f"{t} v{v}": n for (t, v), n in k.template_usage.runs_by_version.items()}
    assert row["deprecated_version_runs"] == k.template_usage.deprecated_version_runs
    assert {d: r["numerator"] for d, r in _breakdown(parts, "access_denials_by_reason").items()} \
        == dict(k.denials_by_reason)
    assert (row["refused_distributions"], row["tenant_mismatches"], row["denied_sensitive_downloads"],
            row["policy_violation_attempts"]) == (k.violations.refused_distributions, k.violations.tenant_mismatches,
                                                  k.violations.denied_sensitive_downloads, k.violations.total)
    assert {t: r["value"] for t, r in _breakdown(parts, "p95_runtime_by_template").items()} \
        == dict(k.p95_runtime_by_template)
    assert row["published_runs"] == k.provenance_complete.denominator


def test_the_day_has_what_the_test_wrote(kpi_world):
    """The agreement above is not between two empty sets: the platform's day, counted by hand."""
    [row] = _read(PLATFORM, "select * from analytics.kpi_daily where day = %(day)s")
    assert (row["runs_created"], row["runs_ended"], row["runs_succeeded"]) == (10, 8, 4)
    assert (row["tick_to_start_max_seconds"], row["deliveries_decided"], row["deliveries_sent"]) == (2700.0, 6, 4)
    assert (row["access_denials"], row["refused_distributions"], row["tenant_mismatches"],
            row["denied_sensitive_downloads"]) == (7, 2, 1, 2)
    assert row["deprecated_version_runs"] == 1
    parts = _read(PLATFORM, "select * from analytics.kpi_daily_breakdown where day = %(day)s")
    assert _breakdown(parts, "access_denials_by_reason").keys() == {
        "expired", "revoked", "not_allowed", "tenant_mismatch", "unknown_token", "other"}


def test_a_tenant_reads_only_its_own_kpi_rows(kpi_world, tenant_ids):
    a, b = kpi_world["a"], kpi_world["b"]
    for model in MODELS:
        # a and b have no row in raw.tenants (kpi_scopes): a seeded tenant reads its scope
        reader = tenant_ids[0] if model == "kpi_scopes" else a
        seen = {r["tenant_id"] for r in _read(reader, f"select distinct tenant_id from analytics.{model}")}
        assert seen == {reader}, model  # neither another tenant's rows nor the platform's
    with warehouse.connection() as conn, conn.cursor() as cur:  # the rows it does not see are there
        cur.execute("select count(distinct tenant_id) from analytics.kpi_daily where tenant_id = any(%s)",
                    ([b, PLATFORM],))
        assert cur.fetchone()[0] == 2
    assert {r["tenant_id"] for r in _read(PLATFORM, "select distinct tenant_id from analytics.kpi_runs")} == {PLATFORM}


def test_a_tenant_admin_may_see_its_kpis_not_the_platforms(kpi_world):
    a = kpi_world["a"]
    assert _python(a, actor=f"admin@{a}.example").run_success == Rate(3, 6)
    with pytest.raises(Denied):
        _python(PLATFORM, actor=f"admin@{a}.example")


def _kpi_report_request(tenant: str, requester: str) -> ReportRequest:
    return ReportRequest.for_period(catalog.load("reporting_kpis"), tenant, "2025-03", requester=requester)


def test_a_tenant_can_run_the_kpi_report_neither_for_the_platform_nor_for_itself(kpi_world):
    a = kpi_world["a"]
    template = catalog.load("reporting_kpis")
    for who in (f"admin@{a}.example", f"manager@{a}.example"):
        with pytest.raises(RunFailed, match="none of the roles this template allows|is not a member of tenant platform"):
            engine.run_report(template, _kpi_report_request(PLATFORM, who))
    with pytest.raises(RequestError, match="platform-wide"):
        engine.run_report(template, _kpi_report_request(a, f"manager@{a}.example"))
    with pytest.raises(RequestError, match="platform partition"):
        incident = catalog.load("incident_summary")
        engine.run_report(incident, ReportRequest.for_period(incident, PLATFORM, "2025-03", requester=PLATFORM_ADMIN))


def test_the_kpi_report_of_the_month_is_recomputed_from_control_rows(kpi_world):
    template = catalog.load("reporting_kpis")
    result = engine.run_report(template, _kpi_report_request(PLATFORM, PLATFORM_ADMIN))
    assert result.manifest["gate_b"]["passed"] is True
    assert {f["format"] for f in result.manifest["files"]} == {"pdf", "xlsx"}
    start = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    with warehouse.connection() as conn:
        k = kpi_service.kpis(conn, actor=PLATFORM_ADMIN, since=start, now=dt.datetime(2025, 4, 1, tzinfo=dt.UTC))
    book = openpyxl.load_workbook(next(result.location.glob("*.xlsx")), read_only=True)
    sheets = {s.title: [list(r) for r in s.iter_rows(values_only=True)] for s in book.worksheets}
    book.close()
    figures = _section_rows(sheets, template, "key_figures")
    [row] = figures
    assert row["tenant_id"] == PLATFORM
    assert float(row["run_success_pct"]) == round(100 * k.run_success.value, 1)
    assert float(row["failure_pct"]) == round(100 * headline.headline(k)["failure_rate"], 1)
    assert float(row["tick_to_start_p95_seconds"]) == k.lag_tick_to_start.p95
    assert float(row["delivery_success_pct"]) == round(100 * headline.headline(k)["delivery_success_rate"], 1)
    assert float(row["gate_b_failure_pct"]) == round(100 * k.gate_b_failure.value, 1)
    assert row["runs"] == sum(k.template_usage.runs_by_version.values())
    assert row["deprecated_version_runs"] == k.template_usage.deprecated_version_runs
    assert row["access_denials"] == sum(k.denials_by_reason.values())
    assert row["policy_violation_attempts"] == k.violations.total
    worst = [r | {"template_key": _key(r["template_key"], k.p95_runtime_by_template)}
             for r in _section_rows(sheets, template, "worst_templates")]
    assert {r["template_key"]: float(r["runtime_p95_seconds"]) for r in worst if r["runtime_p95_seconds"] is not None} \
        == dict(k.p95_runtime_by_template)
    assert worst[0]["template_key"] == max(k.p95_runtime_by_template, key=k.p95_runtime_by_template.get)
    daily = _section_rows(sheets, template, "daily")
    assert len(daily) == 31 and sum(r["runs"] for r in daily) == row["runs"]
    text = re.sub(r"\s+", "", "".join(p.extract_text() for p in PdfReader(next(result.location.glob("*.pdf"))).pages))
    assert len(template.charts) == 10
    for chart in template.charts:  # a trend chart per KPI, each under its title
        assert re.sub(r"\s+", "", chart.title) in text, chart.title
    # the evidence pack's item 8 carries this run's PDF, byte for byte
    with warehouse.connection() as conn:
        name, pdf = evidence_service.reporting_kpis_pdf(conn, "2025-03")
        assert evidence_service.reporting_kpis_pdf(conn, "2025-02") is None
    assert pdf == next(result.location.glob("*.pdf")).read_bytes() and name.endswith(".pdf")


def _key(shown: str, keys) -> str:
    """A template key as a cell shows it (codes may be written as labels) back to the key."""
    return next((k for k in keys if shown in (k, code_label(k))), shown)


def _section_rows(sheets: dict[str, list[list]], template, section: str) -> list[dict]:
    """A section's rows from its XLSX sheet (row 0 the marking, row 1 the column headers)."""
    columns = template.section(section).columns
    headers = [c.as_column().header for c in columns]
    for rows in sheets.values():
        if len(rows) > 1 and list(rows[1][:len(headers)]) == headers:
            return [dict(zip([c.name for c in columns], r, strict=False)) for r in rows[2:] if r and r[0] is not None]
    raise AssertionError(f"no sheet with the columns of {section} among {json.dumps(list(sheets))}")


def test_the_dagster_kpi_asset_carries_the_ten_kpis_as_float_metadata(kpi_world):
    from orchestration.defs.kpis.assets import platform_kpis_daily
    from orchestration.defs.resources import RESOURCES

    with dg.instance_for_test() as instance:
        result = dg.materialize([platform_kpis_daily], partition_key=DAY.isoformat(), instance=instance,
                                resources={"warehouse": RESOURCES["warehouse"]})
        assert result.success
        [event] = result.get_asset_materialization_events()
    assert event.asset_key == dg.AssetKey(["kpis", "platform_daily"])
    metadata = event.materialization.metadata
    assert set(metadata) == set(headline.NAMES)
    expected = headline.headline(_python(PLATFORM))
    assert all(isinstance(metadata[name], dg.FloatMetadataValue) for name, v in expected.items() if v is not None)
    assert {name: metadata[name].value for name in expected} == pytest.approx(expected)
    assert expected["run_success_rate"] == 4 / 8 and expected["schedule_lag_p95_seconds"] == 2700.0


def test_the_kpi_asset_has_a_daily_schedule():
    from orchestration.definitions import defs

    schedule = defs.resolve_schedule_def("kpis_daily_schedule")
    assert schedule.cron_schedule == "30 0 * * *"
    assert defs.resolve_job_def("kpis_daily_job")


def test_no_tenant_principal_may_read_the_platform_partition(kpi_world):
    """Its runs' files: downloading is for members of the partition, which no tenant's principal is."""
    a = kpi_world["a"]
    with warehouse.connection() as conn:
        for who in (f"admin@{a}.example", f"manager@{a}.example"):
            assert "is not a member of tenant platform" in policy.decide(
                policy.get_principal(conn, who), "download", tenant_id=PLATFORM)
        assert policy.decide(policy.get_principal(conn, PLATFORM_ADMIN), "download", tenant_id=PLATFORM) is None


def test_a_source_tenant_named_like_the_platform_partition_gets_no_tenant_partition():
    assert tenants.partition_changes(["acme", PLATFORM], ["acme"]) == ([], [])
    assert tenants.partition_changes(["acme"], ["acme", PLATFORM]) == ([], [PLATFORM])
