"""Gate B's quick pass (a pandas frame, BOOLEAN_ONLY) decides nothing on its own when anything is
unmet: each kind of bad snapshot fails the gate with exactly what the plain Great Expectations
validation of the snapshot table (the way Gate B validated every section before) records, in
memory and in the database; and a suite file that changes is read again.

Snapshots here are tables made by the test in the `snapshots` schema, checked against a suite of
every expectation type the shipped suites use; no dbt build is needed.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid
from pathlib import Path

import pytest

from orchestration.catalog import templates
from orchestration.catalog.templates import ColumnDef, SectionDef
from orchestration.db.warehouse import sqlalchemy_url
from orchestration.exports import SectionSnapshot
from orchestration.runs import gate_b, gate_b_gx
from orchestration.runs.request import ReportRequest
from orchestration.settings import EXPECTATIONS_DIR

from ..conftest import PERIOD, analyst

SECTION = "checks"
COLUMNS = (("tenant_id", "text"), ("day", "date"), ("severity", "text"), ("technique", "text"),
           ("opened", "bigint"), ("pct", "numeric"))
SUITE = [
    ("expect_column_values_to_be_in_set", {"column": "severity", "value_set": ["critical", "high", "urgent"]},
     "critical", "known severities"),
    ("expect_column_values_to_not_be_in_set", {"column": "severity", "value_set": ["urgent"]}, "critical",
     "nothing urgent"),
    ("expect_compound_columns_to_be_unique", {"column_list": ["tenant_id", "day"]}, "critical", "one row per day"),
    ("expect_column_values_to_be_unique", {"column": "day"}, "critical", "unique days"),
    ("expect_column_values_to_be_between", {"column": "opened", "min_value": 0}, "critical", "not negative"),
    ("expect_column_values_to_be_between", {"column": "opened", "min_value": 0, "max_value": 1000}, "warning",
     "unusually many"),
    ("expect_column_values_to_be_between", {"column": "pct", "min_value": 0, "max_value": 100}, "critical",
     "a percentage"),
    ("expect_column_values_to_match_regex", {"column": "technique", "regex": r"^T[0-9]{4}(\.[0-9]{3})?$"},
     "critical", "ATT&CK ids"),
    ("expect_table_row_count_to_equal", {"value": {"$PARAMETER": "window_days"}}, "critical", "every day"),
]


def _good_rows() -> list[list]:
    return [["acme", dt.date(2026, 6, 1) + dt.timedelta(days=i), ("critical", "high")[i % 2], "T1059.001", i, 50.5]
            for i in range(30)]


def _set(index: int, column: str, value):
    position = [name for name, _ in COLUMNS].index(column)

    def change(rows):
        rows[index][position] = value
        return rows
    return change


# Each bad snapshot, and the expectations (type, column, severity) it must leave unmet.
BAD = {
    "null tenant": (_set(0, "tenant_id", None), {("expect_column_values_to_not_be_null", "tenant_id")}),
    "another tenant": (_set(3, "tenant_id", "globex"), {("expect_column_values_to_be_in_set", "tenant_id")}),
    "unknown severity": (_set(4, "severity", "bogus"), {("expect_column_values_to_be_in_set", "severity")}),
    "forbidden severity": (_set(5, "severity", "urgent"), {("expect_column_values_to_not_be_in_set", "severity")}),
    "a day twice": (_set(1, "day", dt.date(2026, 6, 1)), {("expect_column_values_to_be_unique", "day"),
                                                          ("expect_compound_columns_to_be_unique", None)}),
    "negative count": (_set(7, "opened", -3), {("expect_column_values_to_be_between", "opened")}),
    "not a percentage": (_set(8, "pct", 100.5), {("expect_column_values_to_be_between", "pct")}),
    "bad technique id": (_set(9, "technique", "X1059"), {("expect_column_values_to_match_regex", "technique")}),
    "a day missing": (lambda rows: rows[1:], {("expect_table_row_count_to_equal", None)}),
    "empty": (lambda rows: [], {("expect_table_row_count_to_equal", None),
                                ("expect_table_row_count_to_be_between", None)}),
    "too many rows": (lambda rows: rows + rows[:1], {("expect_table_row_count_to_equal", None),
                                                      ("expect_table_row_count_to_be_between", None),
                                                      ("expect_column_values_to_be_unique", "day"),
                                                      ("expect_compound_columns_to_be_unique", None)}),
}


@pytest.fixture()
def suites_root(tmp_path) -> Path:
    shutil.copy(EXPECTATIONS_DIR / "shared.json", tmp_path / "shared.json")
    _write_suite(tmp_path, SUITE)
    return tmp_path


def _write_suite(root: Path, expectations) -> None:
    suite = {"name": "incident_summary", "expectations": [
        {"type": t, "kwargs": kwargs, "severity": severity, "meta": {"sections": [SECTION], "check": check}}
        for t, kwargs, severity, check in expectations]}
    (root / "incident_summary.json").write_text(json.dumps(suite, indent=2))


@pytest.fixture()
def template():
    base = templates.load("incident_summary", 1)
    section = SectionDef(name=SECTION, title="Checks", mandatory=True, max_rows=30,
                         sql="select 1", columns=tuple(ColumnDef(name=n, type=t) for n, t in COLUMNS))
    return base.model_copy(update={"sections": (section,)})


@pytest.fixture()
def snapshot(conn):
    """Makes a snapshot table of the given rows; drops every table it made."""
    made = []

    def make(rows) -> SectionSnapshot:
        table = f'snapshots."r_gbq{uuid.uuid4().hex[:12]}__{SECTION}"'
        with conn.cursor() as cur:
            cur.execute(f"create table {table} ({', '.join(f'{n} {t}' for n, t in COLUMNS)})")
            for row in rows:
                cur.execute(f"insert into {table} values ({', '.join(['%s'] * len(row))})", row)
        conn.commit()
        made.append(table)
        return SectionSnapshot(name=SECTION, title="Checks", table=table, row_count=len(rows),
                               columns=tuple(ColumnDef(name=n, type=t).as_column() for n, t in COLUMNS))
    yield make
    with conn.cursor() as cur:
        for table in made:
            cur.execute(f"drop table {table}")
    conn.commit()


def _gate(template, snap, suites_root) -> gate_b.GateResult:
    request = ReportRequest.for_period(template, "acme", PERIOD, requester=analyst("acme"), formats=("csv",))
    return gate_b.run_gate_b(template, request, {SECTION: snap}, connection_string=sqlalchemy_url(),
                             suites_root=suites_root)


def _as_before(template, snap, suites_root) -> dict:
    """What Gate B recorded before the quick pass: the section's suite (with its meta) validated
    with GX's defaults on the snapshot table, through a fresh context."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suites = [gate_b.load_suite("shared", suites_root), gate_b.load_suite("incident_summary", suites_root)]
    configs = [e for s in suites for e in s["expectations"] if e["meta"]["sections"] in ("*", [SECTION])]
    suite = gx.ExpectationSuite(name="before", expectations=[
        ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e["meta"],
                                 severity=e["severity"]).to_domain_obj() for e in configs])
    datasource = gx.get_context(mode="ephemeral").data_sources.add_sql("before", connection_string=sqlalchemy_url())
    schema, table = (part.strip('"') for part in snap.table.split(".", 1))
    batch = datasource.add_table_asset("t", table_name=table, schema_name=schema) \
        .add_batch_definition_whole_table("whole").get_batch()
    request = ReportRequest.for_period(template, "acme", PERIOD, requester=analyst("acme"), formats=("csv",))
    validation = batch.validate(suite, expectation_parameters=gate_b.parameters_for(template, request, SECTION))
    outcomes = []
    for res in validation.results:
        outcome = gate_b._outcome(SECTION, res, gate_b.SectionSuite(None, None, (), in_memory=False))
        outcome.check = (res.expectation_config.meta or {}).get("check", "")
        outcomes.append(outcome)
    return gate_b.GateResult(outcomes).summary()


def _unmet(result: gate_b.GateResult) -> set[tuple[str, str | None]]:
    return {(o.expectation, o.column) for o in result.outcomes if not o.success}


def test_a_good_snapshot_passes_in_memory_and_in_the_database(template, snapshot, suites_root, monkeypatch):
    snap = snapshot(_good_rows())
    in_memory = _gate(template, snap, suites_root)
    monkeypatch.setattr(gate_b_gx, "IN_MEMORY_ROWS", 0)
    in_database = _gate(template, snap, suites_root)
    for result in (in_memory, in_database):
        assert result.passed and result.met == len(result.outcomes) == len(SUITE) + 3
    assert in_memory.summary() == in_database.summary() == _as_before(template, snap, suites_root)


@pytest.mark.parametrize("where", ["in memory", "in the database"])
@pytest.mark.parametrize("bad", list(BAD))
def test_a_bad_snapshot_fails_with_what_gate_b_recorded_before(bad, where, template, snapshot, suites_root,
                                                                monkeypatch):
    change, unmet = BAD[bad]
    if where == "in the database":
        monkeypatch.setattr(gate_b_gx, "IN_MEMORY_ROWS", 0)
    snap = snapshot(change(_good_rows()))
    result = _gate(template, snap, suites_root)
    assert not result.passed and _unmet(result) == unmet
    assert result.summary() == _as_before(template, snap, suites_root)


def test_a_failed_warning_is_recorded_and_the_gate_passes(template, snapshot, suites_root):
    snap = snapshot(_set(2, "opened", 5000)(_good_rows()))
    result = _gate(template, snap, suites_root)
    assert result.passed and result.summary()["warnings"] == [
        "warning expect_column_values_to_be_between on checks.opened (unusually many): observed [5000]"]
    assert result.summary() == _as_before(template, snap, suites_root)


def test_a_column_the_snapshot_lacks_is_recorded_as_before(template, snapshot, suites_root):
    _write_suite(suites_root, [*SUITE, ("expect_column_values_to_not_be_null", {"column": "vanished"}, "critical",
                                        "a column the section does not have")])
    snap = snapshot(_good_rows())
    result = _gate(template, snap, suites_root)
    assert not result.passed and _unmet(result) == {("expect_column_values_to_not_be_null", "vanished")}
    assert "vanished" in result.summary()["critical_failures"][0]
    assert result.summary() == _as_before(template, snap, suites_root)


def test_a_changed_suite_file_is_read_again(template, snapshot, suites_root):
    snap = snapshot(_good_rows())
    assert _gate(template, snap, suites_root).passed
    path = suites_root / "incident_summary.json"
    before = path.read_text()
    stricter = before.replace('"min_value": 0\n', '"min_value": 9\n', 1)  # the same size: no stat tells them apart
    assert len(stricter) == len(before) and stricter != before
    path.write_text(stricter)
    result = _gate(template, snap, suites_root)
    assert not result.passed
    assert result.summary()["critical_failures"] == [
        "critical expect_column_values_to_be_between on checks.opened (not negative): observed [0, 1, 2, 3, 4, 5, 6, 7, 8]"]
    path.write_text(before)
    assert _gate(template, snap, suites_root).passed


def test_the_frame_holds_only_the_columns_the_suite_names(template, snapshot, suites_root):
    snap = snapshot(_good_rows())
    suite = gate_b._section_suite(template.key, SECTION, (gate_b._read_suite("shared", suites_root),
                                                          gate_b._read_suite("incident_summary", suites_root)))
    session = gate_b_gx.GxSession(sqlalchemy_url())
    frame = session.read_frame(snap, suite.columns)
    assert list(frame.columns) == ["tenant_id", "day", "severity", "technique", "opened", "pct"]
    only_counts = gate_b_gx.named_columns([{"type": "expect_table_row_count_to_equal", "kwargs": {"value": 3}}])
    assert only_counts == frozenset() and len(session.read_frame(snap, only_counts)) == 30
    tenant_only = gate_b_gx.named_columns([{"type": "expect_column_values_to_not_be_null",
                                            "kwargs": {"column": "tenant_id"}}])
    assert list(session.read_frame(snap, tenant_only).columns) == ["tenant_id"]
    # an expectation that may read columns it does not name gets them all
    assert gate_b_gx.named_columns([{"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": []}}]) is None


def test_the_parity_cases_cover_every_type_the_quick_pass_decides_in_memory():
    shared = {e["type"] for e in gate_b.load_suite("shared")["expectations"]}
    assert {t for t, *_ in SUITE} | shared == gate_b_gx.IN_MEMORY_TYPES


def test_a_section_with_another_expectation_type_is_validated_in_the_database(template, snapshot, suites_root):
    """Postgres cannot tell whether values increase (no row order): Gate B says so, as before,
    although pandas would find the column increasing."""
    _write_suite(suites_root, [*SUITE, ("expect_column_values_to_be_increasing", {"column": "opened"}, "critical",
                                        "cumulative")])
    snap = snapshot(_good_rows())
    result = _gate(template, snap, suites_root)
    assert not result.passed and _unmet(result) == {("expect_column_values_to_be_increasing", "opened")}
    assert result.summary() == _as_before(template, snap, suites_root)

