"""The KPI dbt models (dbt_project/models/kpis/) against kpis.compute, what row-level security
lets the reporting role read of them, the reporting_kpis template and the Dagster KPI asset.

Every row is written on DAY, a past day no other test writes on (created_at and at are set
here), for two new tenants; the KPI models are then rebuilt (dbt build, their tests included).
So the platform's numbers of DAY are exactly these rows, and the KPI report of DAY's month is too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from types import SimpleNamespace

import dagster as dg
import openpyxl
import pytest
from pypdf import PdfReader

from orchestration.access import audit
from orchestration.access.tenants import PLATFORM
from orchestration.catalog import templates as catalog
from orchestration.db import warehouse
from orchestration.errors import Denied
from orchestration.exports.numbers import code_label
from orchestration.kpis import headline
from orchestration.kpis.compute import Rate
from orchestration.metrics import dbt_manifest
from orchestration.runs import engine
from orchestration.runs.periods import RequestError
from orchestration.runs.request import ReportRequest
from orchestration.services import kpis as kpi_service
from tests.helpers.principals import upsert_principal

DAY = dt.date(2025, 3, 14)
AT = dt.datetime(2025, 3, 14, 9, 0, tzinfo=dt.UTC)
PLATFORM_ADMIN = "kpi-models-admin@platform.example"
MODELS = ("kpi_daily", "kpi_daily_breakdown", "kpi_runs", "kpi_scopes")


def _run(cur, tenant: str, state: str, *, template: str = "incident_summary", failure_class: str | None = None,
         gate: bool | None = None, runtime: float | None = None, tick_lag: float | None = None,
         published: bool = False, created: dt.datetime = AT) -> str:
    run_id = uuid.uuid4().hex[:16]
    started = created + dt.timedelta(seconds=3) if state != "queued" else None
    ended = started + dt.timedelta(seconds=runtime) if runtime is not None else None
    cur.execute(
        """insert into control.report_runs
               (run_id, template_key, template_version, tenant_id, window_start, window_end, formats, requester,
                trigger, request, input_hash, state, failure_class, gate_passed, started_at, ended_at, published_at,
                tick_at, artifact_location, manifest_sha256, created_at)
           values (%s, %s, 1, %s, '2025-02-01', '2025-03-01', '{csv}', 'kpi-test', %s, '{}', %s, %s, %s, %s,
                   %s, %s, %s, %s, %s, %s, %s)""",
        (run_id, template, tenant, "schedule" if tick_lag is not None else "manual", uuid.uuid4().hex, state,
         failure_class, gate, started, ended, ended if published else None,
         started - dt.timedelta(seconds=tick_lag) if tick_lag is not None else None,
         f"/nowhere/{run_id}" if published else None, "f" * 64 if published else None, created))
    return run_id


@pytest.fixture(scope="module")
def day_world(built):
    """Runs in every state and class, deliveries per channel, denials, violations and a late
    schedule tick on DAY for two new tenants; then the KPI models rebuilt."""
    a, b = f"kpima{uuid.uuid4().hex[:6]}", f"kpimb{uuid.uuid4().hex[:6]}"
    deprecated = f"kpi_dep_{uuid.uuid4().hex[:6]}"
    with warehouse.connection() as conn:
        upsert_principal(conn, PLATFORM_ADMIN, roles=["platform_admin"], tenants=["*"])
        upsert_principal(conn, f"admin@{a}.example", roles=["tenant_admin"], tenants=[a])
        upsert_principal(conn, f"manager@{a}.example", roles=["manager"], tenants=[a])
        with conn, conn.cursor() as cur:
            cur.execute("""insert into control.template_versions (template_key, version, content_hash, content, state,
                               author, approved_by, approved_at, deprecated_by, deprecated_at, deprecation_reason)
                           values (%s, 1, 'h', '{}', 'deprecated', 'kpi-author', 'kpi-approver', %s, 'kpi-approver', %s,
                                   'superseded')""", (deprecated, AT - dt.timedelta(days=3), AT - dt.timedelta(days=1)))
            r1 = _run(cur, a, "completed", gate=True, runtime=20, tick_lag=90, published=True)
            r2 = _run(cur, a, "completed", gate=True, runtime=40, tick_lag=30, published=True,
                      template="sla_performance")
            _run(cur, a, "expired", gate=True, runtime=12)
            _run(cur, a, "failed", failure_class="validation_failed", gate=False, runtime=5)
            _run(cur, a, "failed", failure_class="query_failure", runtime=2, template="sla_performance")
            _run(cur, a, "cancelled", failure_class="cancelled", template=deprecated)
            _run(cur, a, "running")
            _run(cur, a, "queued")
            # a late schedule tick: started 45 minutes after its tick
            r3 = _run(cur, b, "completed", gate=True, runtime=100, tick_lag=2700, published=True)
            _run(cur, b, "failed", failure_class="timeout", gate=True, runtime=900)
            # the previous day and the next: not DAY's
            _run(cur, a, "failed", failure_class="query_failure", created=AT - dt.timedelta(days=1))
            _run(cur, b, "completed", runtime=1, created=AT + dt.timedelta(days=1))
            for tenant, run_id, channel, status in [
                    (a, r1, "email", "sent"), (a, r1, "email", "failed_permanent"), (a, r2, "webhook", "sent"),
                    (a, r2, "webhook", "failed_transient"), (a, r2, "bucket", "pending"), (b, r3, "email", "sent"),
                    (b, r3, "bucket", "sent")]:
                cur.execute("""insert into control.deliveries (idempotency_key, run_id, tenant_id, template_key,
                                   sensitivity, channel, address, status, sent_at, created_at)
                               values (%s, %s, %s, 'incident_summary', 'internal', %s, 'x', %s, %s, %s)""",
                            (uuid.uuid4().hex, run_id, tenant, channel, status, AT if status == "sent" else None, AT))
            cur.execute("""insert into control.artifacts (run_id, tenant_id, template_key, template_version, format,
                               name, store, storage_key, location, bytes, sha256, sensitivity, retention_until)
                           values (%s, %s, 'incident_summary', 1, 'csv', 'report.csv', 'local', 'k', 'l', 1, %s,
                                   'confidential', %s)""", (r1, a, "0" * 64, AT + dt.timedelta(days=90)))
            for tenant, run_id, outcome, reason in [
                    (a, r1, "denied", "link expired at 2025-03-01T00:00:00+00:00"),
                    (a, r1, "denied", f"revoked by admin@{a}.example at 2025-03-02T00:00:00+00:00: leaked"),
                    (a, r2, "denied", "viewer@x.example has none of the roles this template allows to download (x)"),
                    (a, r2, "denied", "run tenant zzz differs from the link's tenant"),
                    (a, r2, "granted", "granted"),
                    (b, r3, "denied", "link expired at 2025-03-03T00:00:00+00:00"),
                    (None, None, "denied", "unknown token"), (None, None, "denied", "something new")]:
                cur.execute("""insert into control.access_events (at, tenant_id, run_id, outcome, reason)
                               values (%s, %s, %s, %s, %s)""", (AT, tenant, run_id, outcome, reason))
            cur.execute("""insert into control.security_events (kind, actor, tenant_id, at)
                           values ('tenant_mismatch', 'kpi-test', %s, %s)""", (a, AT))
        # The audit log is append-only and stamps rows with the clock: the clock (only) is set to DAY.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(audit, "dt", SimpleNamespace(UTC=dt.UTC, datetime=SimpleNamespace(now=lambda tz=None: AT)))
            for tenant in (b, None):
                audit.record_now(conn, actor="kpi-test", action="delivery.refused", target="email:x@elsewhere.example",
                                 outcome="denied", tenant_id=tenant, details={"reason": "domain not allowed"})
    dbt_manifest.build(select="path:models/kpis")
    return {"a": a, "b": b, "deprecated": deprecated}


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
def test_dbt_daily_rows_agree_with_kpis_compute(day_world, who):
    scope = PLATFORM if who == "platform" else day_world[who]
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


def test_the_day_has_what_the_test_wrote(day_world):
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


def test_a_tenant_reads_only_its_own_kpi_rows(day_world, tenant_ids):
    a, b = day_world["a"], day_world["b"]
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


def test_a_tenant_admin_may_see_its_kpis_not_the_platforms(day_world):
    a = day_world["a"]
    assert _python(a, actor=f"admin@{a}.example").run_success == Rate(3, 6)
    with pytest.raises(Denied):
        _python(PLATFORM, actor=f"admin@{a}.example")


def _kpi_report_request(tenant: str, requester: str) -> ReportRequest:
    return ReportRequest.for_period(catalog.load("reporting_kpis"), tenant, "2025-03", requester=requester)


def test_a_tenant_can_run_the_kpi_report_neither_for_the_platform_nor_for_itself(day_world):
    a = day_world["a"]
    template = catalog.load("reporting_kpis")
    for who in (f"admin@{a}.example", f"manager@{a}.example"):
        with pytest.raises(Exception, match="may not run|none of the roles"):
            engine.run_report(template, _kpi_report_request(PLATFORM, who))
    with pytest.raises(RequestError, match="platform-wide"):
        engine.run_report(template, _kpi_report_request(a, f"manager@{a}.example"))
    with pytest.raises(RequestError, match="platform partition"):
        incident = catalog.load("incident_summary")
        engine.run_report(incident, ReportRequest.for_period(incident, PLATFORM, "2025-03", requester=PLATFORM_ADMIN))


def test_the_kpi_report_of_the_month_is_recomputed_from_control_rows(day_world):
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


def test_the_dagster_kpi_asset_carries_the_ten_kpis_as_float_metadata(day_world):
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
