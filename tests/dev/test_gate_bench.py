"""`bench gate` gates published runs' snapshots again and prints CPU per section and per run."""

from __future__ import annotations

import re

from orchestration.catalog import templates
from orchestration.dev import gate_bench
from orchestration.runs import engine
from orchestration.runs.request import ReportRequest
from tests.conftest import PERIOD, analyst

LINE = re.compile(r"gate: (\d+) gates of (\d+) runs \((\d+) sections\), ([\d.]+) ms CPU per section, "
                  r"([\d.]+) ms CPU per run, ([\d.]+) ms wall per run$")


def test_bench_gate_gates_every_published_snapshot_again_and_each_passes(built, conn):
    template = templates.load("sla_performance", 1)
    request = ReportRequest.for_period(template, "initech", PERIOD, requester=analyst("initech"), formats=("csv",))
    published = engine.run_report(template, request, retries=False)
    cases = {case.run_id: case for case in gate_bench.cases(conn)}
    assert set(cases[published.run_id].sections) == {s.name for s in template.sections}
    lines: list[str] = []
    bench = gate_bench.bench_gate(conn, rounds=2, echo=lines.append)
    (line,) = lines
    gates, runs, sections = (int(g) for g in LINE.match(line).groups()[:3])
    assert gates == bench.runs == 2 * runs and runs == len(gate_bench.cases(conn)) and sections == bench.sections
    assert bench.failed == 0 and bench.cpu_ms_per_run > bench.cpu_ms_per_section > 0
