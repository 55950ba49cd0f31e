"""`nexus-reports bench exports --rows N`: how fast and how lean each format is, measured.

A snapshot-shaped table of N rows (text with formula triggers and control characters, numbers,
dates) is built in the warehouse; each exporter then runs in its own process, so that each
one's peak memory (max RSS) is its own. In the same run, the baselines: raw `COPY ... TO STDOUT`
into a file (what the CSV and JSON exporters are compared with) and bare xlsxwriter in
constant-memory mode writing the same rows (what the XLSX exporter is compared with).

The XLSX file is ours (exports/xlsx_package.py), so it is read back here by a second reader,
independent of openpyxl that the tests use: python-calamine (Rust's calamine), every row
compared with the values recomputed from the generating formula.
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from orchestration.exports.sections import Column, SectionSnapshot

COLUMNS = (
    Column("tenant_id", "text", "Tenant"), Column("label", "text", "Label"), Column("amount", "numeric", "Amount"),
    Column("day", "date", "Day"), Column("events", "bigint", "Events"),
)
ORDINAL = "_ordinal"


def build_table(conn, rows: int) -> str:
    table = f'snapshots."bench_{uuid.uuid4().hex[:10]}"'
    with conn, conn.cursor() as cur:
        cur.execute(
            f"""create table {table} as
                select i::bigint as {ORDINAL}, 'bench'::text as tenant_id,
                       case when i %% 97 = 0 then '=SUM(A1:A2)' when i %% 89 = 0 then e'tab\\there'
                            else 'incident ' || i || ' ' || repeat('x', (i %% 40)) end as label,
                       round((i %% 100000) / 7.0, 2)::numeric as amount,
                       (date '2026-01-01' + (i %% 365))::date as day,
                       (i * 13 %% 1000003)::bigint as events
                from generate_series(1, %s) as i""",
            (rows,),
        )
    return table


def expected_row(i: int) -> tuple:
    """Row i of build_table, recomputed in Python: what every reader must find."""
    if i % 97 == 0:
        label = "=SUM(A1:A2)"
    elif i % 89 == 0:
        label = "tab\there"
    else:
        label = f"incident {i} " + "x" * (i % 40)
    return ("bench", label, round((i % 100000) / 7.0, 2), dt.date(2026, 1, 1) + dt.timedelta(days=i % 365), i * 13 % 1000003)


def verify_xlsx(path: Path, rows: int) -> str:
    """Every data row, read back with python-calamine, equals the recomputed row; '' or the first problem."""
    try:
        import python_calamine
    except ImportError:  # a production install without the test extras
        return "not read back: python-calamine is not installed (pip install -e '.[test]')"
    from orchestration.exports.xlsx_export import HEADER_ROWS

    book = python_calamine.CalamineWorkbook.from_path(str(path))
    if book.sheet_names[0] != "About":
        return f"first sheet is {book.sheet_names[0]!r}, not About"
    i = 0
    for name in book.sheet_names[1:]:
        found = book.get_sheet_by_name(name).iter_rows()
        header = [next(found) for _ in range(HEADER_ROWS)][-1]
        if header != [c.header for c in COLUMNS]:
            return f"sheet {name}: header {header}"
        for values in found:
            i += 1
            want = expected_row(i)
            got = (values[0], values[1], values[2], values[3], int(values[4]))
            if got[:2] != want[:2] or abs(got[2] - want[2]) > 1e-9 or got[3:] != want[3:]:
                return f"row {i}: {got} is not {want}"
    return "" if i == rows else f"{i} rows read back, {rows} written"


def section_for(table: str, rows: int) -> SectionSnapshot:
    return SectionSnapshot(name="bench", title="Bench", table=table, columns=COLUMNS, order_by=(ORDINAL,), row_count=rows)


def _worker(kind: str, table: str, rows: int, out: str) -> dict:
    """One measurement, in this (fresh) process."""
    import datetime as dt

    from orchestration.db import warehouse
    from orchestration.exports import formats
    from orchestration.exports.rows import stream_rows
    from orchestration.exports.sections import ReportContext

    section = section_for(table, rows)
    path = Path(out)
    context = ReportContext(
        template_key="bench", template_version=1, title="Bench", tenant_id="bench", tenant_name="Bench",
        period_label="bench", window_start=dt.date(2026, 1, 1), window_end=dt.date(2027, 1, 1), run_id="bench",
        input_hash="0" * 64, generated_at=dt.datetime.now(dt.UTC), key_figures=(), charts=(),
        primary_section="bench",
    )
    with warehouse.connection() as conn:
        started = time.perf_counter()
        if kind == "idle":
            path.write_bytes(b"")  # the worker's own footprint: imports and a connection
        elif kind == "copy":
            with conn.cursor() as cur, path.open("wb") as fh:
                cur.copy_expert(f"copy (select {', '.join(c.name for c in COLUMNS)} from {table} order by {ORDINAL}) "
                                "to stdout with (format csv, header true)", fh)
        elif kind == "xlsxwriter":
            import xlsxwriter

            book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
            sheet = book.add_worksheet("Bench")
            sheet.write_row(0, 0, [c.name for c in COLUMNS])
            for r, values in enumerate(stream_rows(conn, section), start=1):
                sheet.write_row(r, 0, values)
            book.close()
        else:
            formats.get(kind).write(conn, context, [section], path)
        seconds = time.perf_counter() - started
    return {"kind": kind, "seconds": seconds, "bytes": path.stat().st_size, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's high-water RSS. Not getrusage: its ru_maxrss keeps the forking parent's
    peak across exec, which would hide the exporter's own."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: an upper bound


KINDS = ("idle", "copy", "csv", "json", "xlsxwriter", "xlsx", "pdf")


def run(conn, rows: int, echo=print) -> list[dict]:
    table = build_table(conn, rows)
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="nexus-bench-") as tmp:
            for kind in KINDS:
                out = Path(tmp) / f"bench.{kind}"
                proc = subprocess.run([sys.executable, "-m", "orchestration.dev.bench", kind, table, str(rows), str(out)],
                                      capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    raise RuntimeError(f"bench {kind} failed: {proc.stderr.strip().splitlines()[-1:]}")
                results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                if kind == "xlsx":
                    results[-1]["read_back"] = verify_xlsx(out, rows)
                out.unlink()
    finally:
        with conn, conn.cursor() as cur:
            cur.execute(f"drop table if exists {table}")
    by_kind = {r["kind"]: r for r in results}
    for r in results:
        r["rows_per_s"] = rows / r["seconds"] if r["seconds"] else 0.0
    for kind, baseline in (("csv", "copy"), ("json", "copy"), ("xlsx", "xlsxwriter")):  # speed relative to the baseline
        by_kind[kind]["ratio"] = by_kind[baseline]["seconds"] / by_kind[kind]["seconds"]
    floor = by_kind["idle"]["peak_rss_mb"]
    echo(f"{'format':<12} {'rows':>10} {'seconds':>8} {'rows/s':>11} {'MB':>8} {'peak RSS MB':>12} {'over idle':>9}  note")
    notes = {"idle": "a worker that writes nothing: the memory floor of every row below",
             "copy": "baseline: raw COPY to a file", "xlsxwriter": "baseline: bare xlsxwriter, constant memory",
             "csv": f"speed {by_kind['csv']['ratio']:.2f}x raw COPY (target >= 0.7x)",
             "json": f"speed {by_kind['json']['ratio']:.2f}x raw COPY (target >= 0.5x)",
             "xlsx": f"speed {by_kind['xlsx']['ratio']:.2f}x bare xlsxwriter (target >= 4x); "
                     + (by_kind["xlsx"]["read_back"] or "every row read back equal (python-calamine)"),
             "pdf": "rows beyond the PDF row cap are summarized, not drawn"}
    for r in results:
        if r["kind"] == "idle":
            echo(f"{'(idle)':<12} {'':>10} {'':>8} {'':>11} {'':>8} {r['peak_rss_mb']:>12.1f} {'':>9}  {notes['idle']}")
            continue
        echo(f"{r['kind']:<12} {rows:>10,} {r['seconds']:>8.2f} {r['rows_per_s']:>11,.0f} {r['bytes'] / 1e6:>8.1f} "
             f"{r['peak_rss_mb']:>12.1f} {r['peak_rss_mb'] - floor:>+9.1f}  {notes[r['kind']]}")
    return results


if __name__ == "__main__":
    kind, table, rows, out = sys.argv[1:5]
    print(json.dumps(_worker(kind, table, int(rows), out)))
