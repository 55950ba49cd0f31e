"""Item 7: the test evidence package: the suite's JUnit XML summarized by area (unit,
integration, security, performance), and the latest output of each benchmark.

The suite is never run here: `make test` writes the JUnit XML (sources.default_junit) and the
pack takes the newest one; `nexus-reports bench ...` saves its output (sources.bench_dir).
"""

from __future__ import annotations

import inspect
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.evidence.document import Document, code, join, table

TITLE = "Test evidence package"
AREA_NAMES = ("unit", "integration", "security", "performance")
# Which area a test belongs to: the first rule whose prefix starts its id (tests/<path>.py::<name>);
# a test no rule names is an integration test (most run against real Postgres, HTTP, SMTP, S3).
AREAS: tuple[tuple[str, str], ...] = (
    ("tests/exports/test_exports.py::test_csv_and_xlsx_stream_in_bounded_memory", "performance"),
    ("tests/exports/test_exports.py::test_bench_", "performance"),
    ("tests/access/", "security"),
    ("tests/api/test_auth.py", "security"),
    ("tests/api/test_oidc.py", "security"),
    ("tests/api/test_scopes.py", "security"),
    ("tests/catalog/test_sql_guard.py", "security"),
    ("tests/db/test_rls.py", "security"),
    ("tests/db/test_governed_rls.py", "security"),
    ("tests/exports/test_redaction.py", "security"),
    ("tests/exports/test_markings.py", "security"),
    ("tests/links/", "security"),
    ("tests/provenance/", "security"),
    ("tests/runs/test_isolation.py", "security"),
    ("tests/test_architecture.py", "unit"),
    ("tests/kpis/test_compute.py", "unit"),
    ("tests/cli/test_help.py", "unit"),
    ("tests/cli/test_options.py", "unit"),
    ("tests/cli/test_tables.py", "unit"),
    ("tests/catalog/test_catalog.py", "unit"),
    ("tests/metrics/", "unit"),
    ("tests/db/test_rows.py", "unit"),
)
DEFAULT_AREA = "integration"
SHOWN_FAILURES = 50


def area_of(test_id: str) -> str:
    return next((area for prefix, area in AREAS if test_id.startswith(prefix)), DEFAULT_AREA)


def case_id(classname: str, name: str) -> str:
    """pytest's JUnit classname (tests.runs.test_engine[.TestClass]) and name -> tests/runs/test_engine.py::name."""
    parts = classname.split(".")
    module_end = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
    return "/".join(parts[:module_end + 1]) + ".py::" + ".".join([*parts[module_end + 1:], name])


@dataclass
class AreaCount:
    tests: int = 0
    failed: int = 0  # failures and errors
    skipped: int = 0
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return self.tests - self.failed - self.skipped


@dataclass
class SuiteResults:
    by_area: dict[str, AreaCount] = field(default_factory=lambda: {a: AreaCount() for a in AREA_NAMES})
    failures: list[str] = field(default_factory=list)  # test ids, and the first line of why
    timestamp: str | None = None

    @property
    def total(self) -> AreaCount:
        total = AreaCount()
        for c in self.by_area.values():
            total.tests, total.failed, total.skipped = total.tests + c.tests, total.failed + c.failed, total.skipped + c.skipped
            total.seconds += c.seconds
        return total


def read_junit(path: Path) -> SuiteResults:
    """Count every <testcase> by area, streaming (a big suite's XML is never held whole)."""
    results = SuiteResults()
    for _, element in ET.iterparse(path, events=("end",)):
        if element.tag == "testsuite" and results.timestamp is None:
            results.timestamp = element.get("timestamp")
        if element.tag != "testcase":
            continue
        tid = case_id(element.get("classname", ""), element.get("name", ""))
        count = results.by_area[area_of(tid)]
        count.tests += 1
        count.seconds += float(element.get("time") or 0)
        outcome = next((child for child in element if child.tag in ("failure", "error", "skipped")), None)
        if outcome is not None and outcome.tag == "skipped":
            count.skipped += 1
        elif outcome is not None:
            count.failed += 1
            why = (outcome.get("message") or outcome.tag).strip().splitlines()
            results.failures.append(f"{tid} ({outcome.tag}: {why[0][:200] if why else ''})")
        element.clear()
    return results


@dataclass(frozen=True)
class BenchOutput:
    name: str
    path: Path
    text: str


def bench_outputs(directory: Path) -> list[BenchOutput]:
    if not directory.is_dir():
        return []
    return [BenchOutput(p.stem, p, p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.txt"))]


def _problems(junit: Path, results: SuiteResults | None, error: str | None, benches: list[BenchOutput]) -> list[str]:
    problems = []
    if results is None:
        problems.append(f"no test results: {error} (run `make test`, which writes {junit}, or pass --junit FILE)")
    elif results.total.tests == 0:
        problems.append(f"{junit} holds no test case")
    elif results.total.failed:
        problems.append(f"{results.total.failed} of {results.total.tests} tests failed or errored")
    if not benches:
        problems.append("no benchmark output saved (run `nexus-reports bench exports` and `nexus-reports bench api`)")
    return problems


def document(junit: Path, bench_directory: Path) -> Document:
    results, error = None, None
    try:
        results = read_junit(junit)
    except FileNotFoundError:
        error = f"{junit} does not exist"
    except (OSError, ET.ParseError) as exc:
        error = f"{junit} cannot be read: {exc}"
    benches = bench_outputs(bench_directory)
    problems = _problems(junit, results, error, benches)
    blocks = [f"# {TITLE}", inspect.cleandoc(__doc__ or "").split("\n\n", 1)[1]]
    if results is not None:
        rows = [(a, c.tests, c.passed, c.failed, c.skipped, f"{c.seconds:.1f}") for a, c in results.by_area.items()]
        t = results.total
        rows.append(("all", t.tests, t.passed, t.failed, t.skipped, f"{t.seconds:.1f}"))
        blocks += [f"## Results by area ({code(junit)}, run {results.timestamp or 'at an unknown time'})",
                   table(["area", "tests", "passed", "failed or errored", "skipped", "seconds"], rows)]
        if results.failures:
            shown = results.failures[:SHOWN_FAILURES]
            blocks += ["### Failing tests", "\n".join(f"- {code(f)}" for f in shown)
                       + (f"\n- ... and {len(results.failures) - len(shown)} more" if len(results.failures) > len(shown)
                          else "")]
    blocks += ["## Which area a test counts in",
               f"The first rule whose prefix starts the test's id; any other test counts as {DEFAULT_AREA}.",
               table(["test id prefix", "area"], [(code(p), a) for p, a in AREAS]),
               "## Latest benchmark output"]
    blocks += [f"### {b.name}\n\n```\n{b.text.rstrip()}\n```" for b in benches] or ["None saved."]
    status = "ok" if not problems else ("missing" if results is None or not benches else "failing")
    return Document(7, "test_evidence", TITLE, join(*blocks), status, tuple(problems))
