"""The incident summary end to end through the plain pipeline (no Dagster): files, numbers, gate."""

from __future__ import annotations

import json

import openpyxl
import psycopg2
import pytest

from orchestration.artifacts import local_store
from orchestration.catalog import templates
from orchestration.db import warehouse
from orchestration.runs import admission, engine, failures, periods, publish, records, snapshot
from orchestration.runs.request import ReportRequest
from tests.helpers.files import read_csv
from tests.helpers.governance import approved_variant

from ..conftest import PERIOD, analyst


@pytest.fixture(scope="module")
def template():
    return templates.load("incident_summary", 1)


@pytest.fixture(scope="module")
def published(built, template, tenant_ids):
    request = ReportRequest.for_period(template, tenant_ids[0], PERIOD, requester=analyst(tenant_ids[0]))
    return engine.run_report(template, request)


@pytest.fixture(scope="module")
def names(tenant_ids):
    """The published file names: tenant, template, period, variant, the CSV's section, the marking."""
    stem = f"{tenant_ids[0]}_incident_summary_{PERIOD}_internal"
    return {"csv": f"{stem}_summary_by_severity_INTERNAL.csv", "json": f"{stem}_INTERNAL.json",
            "xlsx": f"{stem}_INTERNAL.xlsx", "pdf": f"{stem}_INTERNAL.pdf"}


def independent_summary(conn, tenant: str, start, end) -> list[list[str]]:
    """The primary section recomputed from raw incidents, bypassing dbt entirely."""
    with conn, conn.cursor() as cur:
        cur.execute("set local time zone 'UTC'")
        cur.execute(
            """
            with i as (
                select *, opened_at >= %(s)s and opened_at < %(e)s as in_window,
                       extract(epoch from acknowledged_at - opened_at) as ack_s,
                       extract(epoch from resolved_at - opened_at) as res_s
                from raw.incidents where tenant_id = %(t)s
            )
            select tenant_id, severity,
                   count(*) filter (where in_window) as opened,
                   count(*) filter (where resolved_at >= %(s)s and resolved_at < %(e)s) as resolved,
                   round(sum(ack_s) filter (where in_window) / nullif(count(ack_s) filter (where in_window), 0) / 60, 1),
                   round(sum(res_s) filter (where in_window) / nullif(count(res_s) filter (where in_window), 0) / 60, 1),
                   round(100.0 * count(*) filter (where in_window and ack_s <= sla_ack_minutes * 60)
                         / nullif(count(ack_s) filter (where in_window), 0), 1),
                   round(100.0 * count(*) filter (where in_window and res_s <= sla_resolve_minutes * 60)
                         / nullif(count(res_s) filter (where in_window), 0), 1),
                   count(*) filter (where opened_at < %(e)s and (resolved_at is null or resolved_at >= %(e)s))
            from i
            group by tenant_id, severity
            having count(*) filter (where in_window) > 0
                or count(*) filter (where opened_at < %(e)s and (resolved_at is null or resolved_at >= %(e)s)) > 0
            order by array_position(array['critical', 'high', 'medium', 'low'], severity)
            """,
            {"t": tenant, "s": start, "e": end},
        )
        return [["" if v is None else str(v) for v in row] for row in cur.fetchall()]


def test_all_four_files_and_manifest_are_published(published, tenant_ids, names):
    assert sorted(p.name for p in published.location.iterdir()) == sorted([*names.values(), "manifest.json", "manifest.sig.json"])
    assert published.location.parts[-4:-1] == (tenant_ids[0], "incident_summary", PERIOD)
    assert not list(published.location.parent.glob(".staging-*"))


def test_csv_equals_an_independent_query(published, conn, tenant_ids, template, names):
    start, end = periods.month_window(PERIOD)
    rows = read_csv(published.location / names["csv"])
    assert rows[0] == [c.name for c in template.section("summary_by_severity").columns]
    expected = independent_summary(conn, tenant_ids[0], start, end)
    assert len(expected) >= 3
    assert rows[1:] == expected


def test_xlsx_matches_csv(published, template, names):
    rows = read_csv(published.location / names["csv"])
    book = openpyxl.load_workbook(published.location / names["xlsx"], read_only=True)
    sheet = book[template.section("summary_by_severity").title[:31]]
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    body = values[2:]  # below the marking row and the column headers
    assert len(body) == len(rows) - 1

    def norm(v):
        if v is None or v == "":
            return None
        try:
            return round(float(v), 6)
        except (TypeError, ValueError):
            return str(v)

    assert [[norm(v) for v in r] for r in body] == [[norm(v) for v in r] for r in rows[1:]]


def test_json_has_every_section_with_snapshot_row_counts(published, template, names):
    doc = json.loads((published.location / names["json"]).read_text())
    assert doc["report"]["run_id"] == published.run_id
    assert [s["name"] for s in doc["sections"]] == [s.name for s in template.sections]
    for section in doc["sections"]:
        assert len(section["rows"]) == published.manifest["row_counts"][section["name"]]
    trend = next(s for s in doc["sections"] if s["name"] == "daily_trend")
    assert len(trend["rows"]) == 30  # June: every day present, even days without incidents


def test_manifest_hashes_match_files_and_names_versions(published, template):
    manifest = local_store.LocalStore(published.location.parent).read_manifest(published.location.name)
    assert local_store.LocalStore(published.location.parent).verify(published.location.name) == []
    assert {f["format"] for f in manifest["files"]} == {"csv", "json", "xlsx", "pdf"}
    assert manifest["template"] == {
        "key": "incident_summary", "version": 1, "content_hash": template.content_hash,
        "owner": template.owner, "sensitivity": template.sensitivity,
    }
    assert {m["id"] for m in manifest["metrics"]} == {m.id for m in template.metrics}
    assert all(m["formula"] and m["formula_version"] for m in manifest["metrics"])
    assert len(manifest["dbt"]["manifest_sha256"]) == 64
    assert manifest["gate_b"]["passed"] is True
    assert manifest["input_hash"] == published.manifest["input_hash"]


def test_manifest_states_the_classification_and_what_each_file_holds(published, template, names):
    manifest = published.manifest
    assert manifest["classification"] == {"sensitivity": "internal", "marking": "INTERNAL"}
    by_format = {f["format"]: f for f in manifest["files"]}
    assert {fmt: entry["name"] for fmt, entry in by_format.items()} == names
    assert all(e["classification"] == "INTERNAL" and e["variant"] == "internal" for e in manifest["files"])
    # A CSV is one table: the entry says which section it holds and where the others are.
    assert by_format["csv"]["sections"] == ["summary_by_severity"]
    assert "holds section summary_by_severity only" in by_format["csv"]["holds"] and "XLSX" in by_format["csv"]["holds"]
    assert by_format["xlsx"]["sections"] == by_format["json"]["sections"] == [s.name for s in template.sections]
    assert "holds" not in by_format["pdf"]


def test_tampered_file_is_detected(published, tmp_path, names):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(published.location, copy)
    with (copy / names["csv"]).open("a") as fh:
        fh.write("x\n")
    assert any("sha256" in p for p in local_store.LocalStore(copy.parent).verify(copy.name))


def test_same_request_same_input_hash(published, conn, template, tenant_ids):
    record = records.get_run(conn, published.run_id)
    again = ReportRequest.for_period(template, tenant_ids[0], PERIOD, requester=analyst(tenant_ids[0]))
    assert record.input_hash == again.input_hash == published.manifest["input_hash"]
    other = ReportRequest.for_period(template, tenant_ids[1], PERIOD, requester=analyst(tenant_ids[0]))
    assert other.input_hash != again.input_hash
    assert record.state == "completed" and record.failure_class is None


def test_snapshot_tables_are_immutable(published, conn):
    record = records.get_run(conn, published.run_id)
    table = record.snapshot_tables["summary_by_severity"]
    for sql in (f"update {table} set severity = 'x'", f"delete from {table}", f"truncate {table}",
                f"insert into {table} (tenant_id, severity) values ('x', 'low')"):
        with pytest.raises(psycopg2.Error, match="immutable"):
            with conn, conn.cursor() as cur:
                cur.execute(sql)


def _no_artifacts(root, tenant):
    folder = root / tenant / "incident_summary"
    return not folder.exists() or not any(p.name != ".staging" and (p / "manifest.json").exists()
                                           for period in folder.iterdir() for p in period.iterdir())


def test_gate_b_fails_on_empty_mandatory_sections_and_publishes_nothing(built, conn, template, tenant_ids, artifacts_root):
    request = ReportRequest.for_period(template, tenant_ids[1], "2019-01", requester=analyst(tenant_ids[1]))
    with pytest.raises(failures.RunFailed) as failed:
        engine.run_report(template, request)
    assert failed.value.failure_class == "validation_failed"
    record = records.get_run(conn, failed.value.run_id)
    assert record.state == "failed" and record.gate_passed is False
    assert "row count" in record.diagnosis
    assert record.artifact_location is None
    assert not (artifacts_root / tenant_ids[1] / "incident_summary" / "2019-01").exists()


def test_gate_b_catches_another_tenants_row(built, conn, template, tenant_ids, artifacts_root):
    """A section whose query leaks a row of another tenant (e.g. a bad join) must not publish."""
    victim, other = tenant_ids[2], tenant_ids[0]
    original = template.section("by_status").sql
    leaky = f"select * from ({original}) as mine union all select '{other}', 'low', 'new', 1::bigint"
    sections = tuple(
        s.model_copy(update={"sql": leaky}) if s.name == "by_status" else s for s in template.sections
    )
    # It compiles and has the declared columns, so Gate A lets it through: Gate B must stop it.
    bad = approved_variant(conn, template, 90, sections=sections)
    request = ReportRequest.for_period(bad, victim, PERIOD, requester=analyst(victim))
    with pytest.raises(failures.RunFailed) as failed:
        engine.run_report(bad, request)
    assert failed.value.failure_class == "validation_failed"
    assert "tenant" in failed.value.diagnosis
    record = records.get_run(conn, failed.value.run_id)
    assert record.state == "failed" and record.artifact_location is None
    folder = artifacts_root / victim / "incident_summary" / PERIOD
    assert not any(failed.value.run_id in p.name for p in folder.glob("*"))  # neither published nor staged


def test_publish_refuses_without_a_passed_gate(built, conn, template, tenant_ids, artifacts_root):
    request = ReportRequest.for_period(template, tenant_ids[2], PERIOD, requester=analyst(tenant_ids[2]))
    run_id = admission.start(conn, template, request)
    sections = engine.take_snapshot(conn, run_id, template, request)
    with pytest.raises(failures.RunFailed, match="no passed Gate B"):
        publish.render_and_publish(conn, run_id, template, request, sections)
    assert records.get_run(conn, run_id).state == "failed"
    assert not (artifacts_root / tenant_ids[2] / "incident_summary" / PERIOD / run_id).exists()


def test_section_query_breaking_its_contract_is_stopped_at_snapshot(built, conn, template, tenant_ids):
    """Defence in depth behind Gate A: the snapshot itself checks the columns against the contract."""
    sections = tuple(
        s.model_copy(update={"sql": s.sql.replace("sum(incident_count) as incident_count", "sum(incident_count) as n")})
        if s.name == "by_status" else s
        for s in template.sections
    )
    bad = template.model_copy(update={"sections": sections})
    request = ReportRequest.for_period(bad, tenant_ids[0], PERIOD, requester=analyst(tenant_ids[0]))
    with warehouse.reader_connection() as reader:
        with pytest.raises(snapshot.SnapshotError, match="the template declares"):
            snapshot.take(conn, reader, "contract00000001", bad, request)


def test_request_validation_refuses_bad_requests(template, tenant_ids):
    good = ReportRequest.for_period(template, tenant_ids[0], PERIOD, requester="x")
    for change, message in [
        ({"formats": ("docx",)}, "formats"),
        ({"tenant_id": "Acme Corp"}, "tenant"),
        ({"filters": {"severity": "high"}}, "filters"),
        ({"requester": " "}, "requester"),
        ({"trigger": "whim"}, "trigger"),
        ({"template_version": 9}, "request is for"),
    ]:
        from dataclasses import replace

        with pytest.raises(periods.RequestError, match=message):
            replace(good, **change).validate(template)
    with pytest.raises(periods.RequestError, match="period"):
        ReportRequest.for_period(template, tenant_ids[0], "June", requester="x")
