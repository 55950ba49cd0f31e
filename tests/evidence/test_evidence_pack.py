"""The signoff evidence pack: one build through the command line (PDF rendering is slow), read
back as an auditor would: the nine files, the PDF, the hashes, the access matrix against the
policy; an item whose source is missing fails the pack. The other tests read the documents
without rendering a PDF."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import click
import pytest
from pypdf import PdfReader

from orchestration.access import policy
from orchestration.access.roles import ROLES
from orchestration.evidence import runbook, signoff, suite_results
from orchestration.evidence.sources import BenchRecorder
from tests.conftest import PERIOD, analyst
from tests.helpers.audit import audit_log
from tests.helpers.cli import invoke, one_line_error

PLATFORM_ADMIN = "platform@nexus.example"
TITLES = (
    "Report template governance policy", "Metric dictionary and formula specification",
    "Run engine architecture and retry policy", "Artifact retention and redaction policy",
    "Scheduler and delivery runbook", "Access control matrix for reporting actions", "Test evidence package",
    "KPI baseline report", "Signoff summary",
)
# pytest's JUnit XML: one passing security test, one failing integration test, one skipped unit test.
JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3" time="4.2"
 timestamp="2026-12-01T10:00:00.000000+00:00" hostname="ci">
<testcase classname="tests.access.test_tokens" name="test_revoked_token_is_refused" time="1.5" />
<testcase classname="tests.runs.test_engine" name="test_timeout[30]" time="2.5">
<failure message="AssertionError: run ended completed">trace</failure></testcase>
<testcase classname="tests.kpis.test_compute" name="test_percentile" time="0.2"><skipped message="not today" /></testcase>
</testsuite></testsuites>
"""


def _table(markdown: str, first_header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose first header cell is `first_header`."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


@pytest.fixture(scope="module")
def bench_dir() -> Path:
    """A benchmark's output saved where `nexus-reports bench` saves it (the test NEXUS_HOME's)."""
    recorder = BenchRecorder(lambda line: None)
    recorder("csv   100,000 rows  0.41 s")
    return recorder.save("exports", "nexus-reports bench exports --rows 100000").parent


@pytest.fixture(scope="module")
def pack(built, tmp_path_factory, bench_dir) -> tuple[Path, object]:
    """One pack, built as `make test` leaves things except that no JUnit file exists yet."""
    out = tmp_path_factory.mktemp("evidence")
    result = invoke("evidence", "build", "--out", out, "--period", PERIOD, "--junit", out / "no-junit.xml",
                    "--as", PLATFORM_ADMIN)
    folders = list(out.glob("evidence-*"))
    assert len(folders) == 1, result.output
    return folders[0], result


def test_the_pack_holds_the_nine_documents_and_one_pdf_with_every_page_marked(pack):
    folder, _ = pack
    assert re.fullmatch(rf"evidence-{PERIOD}-\d{{8}}T\d{{6}}Z", folder.name)
    documents = sorted(folder.glob("0?_*.md"))
    assert [int(p.name[:2]) for p in documents] == list(range(1, 10))
    for path in documents:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# ") and len(text.splitlines()) > 3, path
    assert (folder / "05_scheduler_and_delivery_runbook.md").read_text() == runbook.RUNBOOK_PATH.read_text()
    assert (folder / "07_bench_exports.txt").read_text().startswith("# nexus-reports bench exports --rows 100000 at ")
    pdf = PdfReader(folder / "evidence_pack.pdf")
    pages = [page.extract_text() for page in pdf.pages]
    assert len(pages) >= 9
    assert all("CONFIDENTIAL" in text for text in pages)
    whole = " ".join(" ".join(pages).split())
    for title in TITLES:
        assert title in whole
    assert not list(folder.parent.glob("*.partial"))


def test_every_file_is_hashed_and_the_hashes_are_the_files(pack):
    folder, _ = pack
    sums = dict(reversed(line.split("  ", 1)) for line in (folder / signoff.SUMS_FILE).read_text().splitlines())
    assert set(sums) == {p.name for p in folder.iterdir()} - {signoff.SUMS_FILE}
    for name, digest in sums.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    rows = _table((folder / "09_signoff_summary.md").read_text(), "#")
    listed = {r[2].strip("`"): r[3].strip("`") for r in rows}
    assert {f"{n:02d}" for n in range(1, 9)} <= {name[:2] for name in listed}
    for name, digest in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_a_missing_junit_file_fails_the_test_evidence_item_and_the_command(pack):
    folder, result = pack
    assert result.exit_code == 1
    assert "items 7 (missing)" in one_line_error(result.stderr)
    summary = (folder / "09_signoff_summary.md").read_text()
    assert "**INCOMPLETE**" in summary
    status = {r[0]: (r[5], r[6]) for r in _table(summary, "#") if r[0]}
    assert status["7"][0] == "MISSING" and "no-junit.xml does not exist" in status["7"][1]
    assert status["6"] == ("OK", "")
    assert not (folder / "07_junit.xml").exists()


def test_the_access_matrix_is_the_policy(pack):
    folder, _ = pack
    rows = {r[0]: dict(zip(ROLES, r[1:], strict=True))
            for r in _table((folder / "06_access_control_matrix.md").read_text(), "action")}
    for action in ("approve", "include_withdrawn", "download", "kpis", "evidence"):
        for role in ROLES:
            allowed = role in policy.MATRIX[action] or (role == "platform_admin" and action not in policy.NOT_IMPLIED)
            assert rows[action][role] == ("yes" if allowed else "-"), (action, role)
    assert rows["revoke: every link of a tenant (the incident switch)"]["manager"] == "-"


def test_template_versions_in_the_governance_policy_are_the_control_schema(pack, conn):
    folder, _ = pack
    with conn, conn.cursor() as cur:
        cur.execute("select template_key, version::text, state, approved_by from control.template_versions")
        expected = {(key, version, state, approver or "-") for key, version, state, approver in cur.fetchall()}
    rows = _table((folder / "01_template_governance_policy.md").read_text(), "template")
    assert {(r[0], r[1], r[2], r[6]) for r in rows} == expected


def test_the_build_is_audited_with_who_and_where(pack, conn):
    folder, _ = pack
    [(actor, outcome, details)] = audit_log(conn, "actor", "outcome", "details", action="evidence.built",
                                            target=str(folder))
    assert (actor, outcome) == (PLATFORM_ADMIN, "succeeded")
    assert details["folder"] == str(folder) and details["host"] and details["complete"] is False
    assert details["items"]["7"] == "missing"


def test_only_a_platform_admin_builds_the_pack(built, conn, tmp_path):
    result = invoke("evidence", "build", "--out", tmp_path, "--period", PERIOD, "--as", analyst("acme"))
    assert result.exit_code == 1
    assert "may not evidence" in one_line_error(result.stderr)
    assert not list(tmp_path.iterdir())
    assert audit_log(conn, "outcome", action="evidence.denied", target=f"evidence pack {PERIOD}")[-1] == ("denied",)


def test_junit_results_are_counted_by_area_and_a_failure_fails_the_item(tmp_path, bench_dir):
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    results = suite_results.read_junit(junit)
    counts = {a: (c.tests, c.passed, c.failed, c.skipped) for a, c in results.by_area.items()}
    assert counts == {"security": (1, 1, 0, 0), "integration": (1, 0, 1, 0), "unit": (1, 0, 0, 1),
                      "performance": (0, 0, 0, 0)}
    document = suite_results.document(junit, bench_dir)
    assert document.status == "failing"
    assert document.problems == ("1 of 3 tests failed or errored",)
    assert "tests/runs/test_engine.py::test_timeout[30]" in document.markdown
    assert suite_results.document(junit, tmp_path / "no-bench").status == "missing"


def _parse(args: list[str]) -> None:
    """Parse a command line with the CLI's own parser down to the command it names, as click would
    before invoking it (nothing runs). No runbook line puts options before a subcommand."""
    from orchestration.cli.main import main

    ctx = click.Context(main, info_name="nexus-reports")
    command, rest = main, list(args)
    while isinstance(command, click.Group):
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = click.Context(command, info_name=name, parent=ctx)
    command.make_context(ctx.info_name, rest, parent=ctx.parent)


def test_every_command_in_the_runbook_parses_with_the_cli():
    commands = runbook.commands(runbook.RUNBOOK_PATH.read_text())
    assert len(commands) > 20
    named = {tuple(args[:2]) for args in commands}
    for wanted in (("schedules", "pause"), ("schedules", "resume"), ("delivery", "retry"), ("links", "revoke"),
                   ("delivery", "add-webhook")):
        assert wanted in named
    for args in commands:
        _parse(args)


def test_a_runbook_command_or_option_that_does_not_exist_is_caught():
    made_up = runbook.commands("```sh\nnexus-reports schedules snooze 12 --as a@b.example\n```\n"
                               "and `nexus-reports links revoke --everything\n --as a@b.example --reason x`.")
    assert made_up == [["schedules", "snooze", "12", "--as", "a@b.example"],
                       ["links", "revoke", "--everything", "--as", "a@b.example", "--reason", "x"]]
    for args in made_up:
        with pytest.raises(click.UsageError):
            _parse(args)


def test_a_bad_or_future_period_is_one_clear_line(built, tmp_path):
    for period, said in (("2026-13", "invalid period '2026-13': expected YYYY-MM"), ("2999-01", "has not started yet")):
        result = invoke("evidence", "build", "--out", tmp_path, "--period", period, "--as", PLATFORM_ADMIN)
        assert result.exit_code == 1 and said in one_line_error(result.stderr), result.output
    assert not list(tmp_path.iterdir())
