"""What `make demo` prints: one progress line per report run, a table that fits a terminal (files
counted, not listed), and a short summary with the next commands to try.

Plain text only: no colour codes, so the output reads the same in a terminal, a file and a CI log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orchestration.cli.tables import Column, render

# The widest line the table may have: a terminal of 100 columns shows it without wrapping.
MAX_WIDTH = 100


def progress_line(done: int, total: int, r) -> str:
    """`[ 3/18] incident_summary for acme, 2026-11: completed, Gate B passed, 1,234 rows, 5 files (4.2s)`."""
    width = len(str(total))
    if r.ok:
        outcome = f"completed, Gate B {r.gate}, {r.rows:,} rows, {len(r.files)} files"
    else:
        outcome = f"{r.state or 'failed'}: {r.diagnosis}"
    return f"[{done:>{width}}/{total}] {r.template} for {r.tenant}, {r.period}: {outcome} ({r.seconds:.1f}s)"


def table_lines(results: Sequence) -> list[str]:
    columns = [Column("template"), Column("tenant"), Column("period"), Column("state"), Column("gate"),
               Column("rows", right=True), Column("files", right=True), Column("secs", right=True)]
    return render(columns, [(r.template, r.tenant, r.period, r.state or "failed", r.gate or "-", f"{r.rows:,}",
                             f"{len(r.files)} files", f"{r.seconds:.1f}") for r in results])


def print_table(results: Sequence, echo: Callable[[str], None] = print) -> None:
    echo("")
    for line in table_lines(results):
        echo(line)
    failed = [r for r in results if not r.ok]
    for r in failed:  # the table holds no free text: each failure's reason below it
        echo(f"  {r.template} for {r.tenant}: {r.diagnosis}")


def summary_lines(results: Sequence, store: str, dbt_log: str) -> list[str]:
    completed = [r for r in results if r.ok]
    files = sum(len(r.files) for r in completed)
    example = completed[0] if completed else None
    lines = [
        "",
        f"Done: {len(results)} report runs, {len(completed)} completed with Gate B passed, "
        f"{len(results) - len(completed)} failed; {files} files in {store}.",
        f"dbt's log: {dbt_log}",
        "Next:",
    ]
    commands = [("nexus-reports runs list", "the runs just made, newest first")]
    if example is not None:
        commands += [
            (f"nexus-reports runs show {example.run_id}", "stages, timings and files of one run"),
            (f"nexus-reports links create {example.run_id} --format pdf --for analyst@{example.tenant}.example "
             f"--as manager@{example.tenant}.example", ""),
        ]
    commands.append(("make dev", "the Dagster UI on http://127.0.0.1:3000, the Reporting API on :8088/docs"))
    width = max(len(command) for command, note in commands if note)
    return lines + [f"  {command:<{width}}  {note}".rstrip() if note else f"  {command}" for command, note in commands]
