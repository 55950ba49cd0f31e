"""`nexus-reports bench gate`: what Gate B costs per section and per run, in CPU seconds.

Gate B runs again, in this one warm process, on the frozen snapshots of published runs (the
demo's, for instance): one round to warm up (GX's session, the suite cache), then N rounds
timed. CPU time is this process's (`time.process_time`), the figure that says how many runs two
cores can gate in a month-end window; the database's share is small (the quick pass reads each
snapshot once). `--profile FILE` writes cProfile's stats of the timed rounds (read them with
`python -m pstats FILE`).
"""

from __future__ import annotations

import cProfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestration.catalog.templates import Template
from orchestration.db.warehouse import sqlalchemy_url
from orchestration.exports import SectionSnapshot
from orchestration.governance import versions
from orchestration.runs import engine, gate_b, records
from orchestration.runs.request import ReportRequest

Echo = Callable[[str], None]


@dataclass(frozen=True)
class GateCase:
    run_id: str
    template: Template
    request: ReportRequest
    sections: dict[str, SectionSnapshot]


@dataclass(frozen=True)
class GateBench:
    runs: int  # gates timed (runs x rounds)
    sections: int
    cpu_seconds: float
    wall_seconds: float
    failed: int  # gates that did not pass (a published run's snapshot should pass again)

    @property
    def cpu_ms_per_section(self) -> float:
        return 1000 * self.cpu_seconds / max(self.sections, 1)

    @property
    def cpu_ms_per_run(self) -> float:
        return 1000 * self.cpu_seconds / max(self.runs, 1)


def cases(conn, limit: int = 200) -> list[GateCase]:
    """The newest published runs whose snapshots are still there, each with the template version it ran."""
    found = []
    for record in records.completed_runs(conn)[-limit:]:
        if record.snapshot_state != "frozen" or not record.snapshot_tables:
            continue  # its snapshot is already dropped
        template = versions.template_of_run(conn, record)
        found.append(GateCase(record.run_id, template, ReportRequest.from_json(record.request),
                              engine.sections_of(template, record)))
    return found


def bench_gate(conn, *, rounds: int, echo: Echo, profile_to: Path | None = None) -> GateBench:
    chosen = cases(conn)
    if not chosen:
        raise LookupError("no published runs with snapshots to gate: run `nexus-reports demo` first")
    url = sqlalchemy_url()

    def one_round() -> tuple[int, int]:
        sections = failed = 0
        for case in chosen:
            result = gate_b.run_gate_b(case.template, case.request, case.sections, connection_string=url)
            sections += len(case.sections)
            failed += not result.passed
        return sections, failed

    one_round()  # warm: GX's session and the suites are built once per process
    profiler = cProfile.Profile() if profile_to else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    totals = [one_round() for _ in range(rounds)]
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile_to)
    bench = GateBench(runs=len(chosen) * rounds, sections=sum(s for s, _ in totals),
                      cpu_seconds=time.process_time() - cpu, wall_seconds=time.perf_counter() - wall,
                      failed=sum(f for _, f in totals))
    echo(f"gate: {bench.runs} gates of {len(chosen)} runs ({bench.sections} sections), "
         f"{bench.cpu_ms_per_section:.1f} ms CPU per section, {bench.cpu_ms_per_run:.1f} ms CPU per run, "
         f"{1000 * bench.wall_seconds / bench.runs:.1f} ms wall per run"
         + (f"; {bench.failed} did not pass" if bench.failed else "")
         + (" (profiled: times inflated)" if profiler else ""))
    if profile_to:
        echo(f"profile: {profile_to} (python -m pstats {profile_to})")
    return bench
