"""Renderers on a hand-made snapshot: what a spreadsheet user, a parser and a reader would see."""

from __future__ import annotations

import datetime as dt
import json
import re
import tracemalloc
import uuid
from decimal import Decimal

import openpyxl
import pypdf
import pytest

from orchestration.db import warehouse
from orchestration.exports.csv_export import neutralize_formula, write_csv
from orchestration.exports.json_export import write_json
from orchestration.exports.pdf_export import safe_url_fetcher, write_pdf
from orchestration.exports.sections import ChartSpec, Column, KeyFigure, ReportContext, SectionSnapshot
from orchestration.exports.xlsx_export import MAX_CELL_CHARS, TRUNCATION_MARKER, write_xlsx
from tests.helpers.files import read_csv

DANGEROUS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tleading tab",
             "\rcarriage", '<img src="file:///etc/passwd">']
PLAIN = ['comma, "quote"', "line\nbreak", "Zugriff verweigert — ü 日本", "a\x01b"]
COLUMNS = (Column("tenant_id", "text", "Tenant"), Column("label", "text", "Label"),
           Column("amount", "numeric", "Amount"), Column("day", "date", "Day"))


@pytest.fixture(scope="module")
def conn():
    with warehouse.connection() as c:
        yield c


def make_section(conn, name: str, rows: list[tuple]) -> SectionSnapshot:
    table = f'snapshots."t_{uuid.uuid4().hex[:10]}_{name}"'
    with conn, conn.cursor() as cur:
        cur.execute(f"create table {table} (_ordinal bigint generated always as identity, tenant_id text, "
                    "label text, amount numeric, day date)")
        cur.executemany(f"insert into {table} (tenant_id, label, amount, day) values (%s, %s, %s, %s)", rows)
    return SectionSnapshot(name=name, title=f"Section {name}", table=table, columns=COLUMNS,
                           order_by=("_ordinal",), row_count=len(rows))


def report(**changes) -> ReportContext:
    base = ReportContext(
        template_key="test_report", template_version=3, title="Test report", tenant_id="acme",
        tenant_name="Acme Corp", period_label="June 2026", window_start=dt.date(2026, 6, 1),
        window_end=dt.date(2026, 7, 1), run_id="run0123456789abc", input_hash="f" * 64,
        generated_at=dt.datetime(2026, 7, 1, 3, 0, tzinfo=dt.UTC),
        key_figures=(KeyFigure("Incidents opened", 1234), KeyFigure("MTTA", 42.5, "min")),
        charts=(ChartSpec("tricky", "bar", "label", ("amount",), "Amounts"),), primary_section="tricky",
    )
    return ReportContext(**{**base.__dict__, **changes})


@pytest.fixture(scope="module")
def tricky(conn):
    rows = [("acme", text, Decimal(i) - 3, dt.date(2026, 6, i + 1)) for i, text in enumerate(DANGEROUS + PLAIN)]
    rows.append(("acme", None, None, None))
    rows.append(("acme", "x" * 40_000, Decimal("1.5"), dt.date(2026, 6, 30)))
    return make_section(conn, "tricky", rows)


def unescape(value):
    # A carriage return is stored as the OOXML escape _x000D_ (Excel shows a CR) and a literal
    # "_x000D_" as _x005F_x000D_; openpyxl hands the escapes back verbatim, Excel decodes them.
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), value) if isinstance(value, str) else value


def test_csv_neutralizes_formulas_and_keeps_everything_else(conn, tricky, tmp_path):
    path = tmp_path / "out.csv"
    assert write_csv(conn, tricky, path) == tricky.row_count
    rows = read_csv(path)
    assert rows[0] == ["tenant_id", "label", "amount", "day"]
    labels = [r[1] for r in rows[1:]]
    for text in DANGEROUS[:6]:
        assert "'" + text in labels  # inert: a spreadsheet shows the text
    assert '<img src="file:///etc/passwd">' in labels
    for text in PLAIN:
        assert text in labels  # commas, quotes, newlines, unicode round-trip byte-exact
    assert rows[1][2] == "-3"  # a negative number stays a number
    assert "x" * 40_000 in labels  # CSV has no cell limit: never cut
    assert neutralize_formula("=1+1") == "'=1+1" and neutralize_formula("1+1") == "1+1"


def test_xlsx_text_is_never_a_formula_and_limits_are_visible(conn, tricky, tmp_path):
    path = tmp_path / "out.xlsx"
    assert write_xlsx(conn, report(), [tricky], path) == tricky.row_count
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["About", "Section tricky"]
    sheet = book["Section tricky"]
    assert sheet["A1"].value.startswith("INTERNAL · Test report")  # the marking row above the table
    assert [c.value for c in sheet[2]] == ["Tenant", "Label", "Amount", "Day"]
    cells = [row[1] for row in sheet.iter_rows(min_row=3)]
    assert len(cells) == tricky.row_count
    for cell, text in zip(cells, DANGEROUS, strict=False):  # DANGEROUS rows come first
        assert cell.data_type == "s" and unescape(cell.value) == text  # the original text, as text
    assert cells[len(DANGEROUS) + 3].value == "a\ufffdb"  # XML-illegal control char replaced visibly
    long_value = cells[-1].value
    assert len(long_value) == MAX_CELL_CHARS and long_value.endswith(TRUNCATION_MARKER)
    amounts = [row[2].value for row in sheet.iter_rows(min_row=3)]
    assert amounts[0] == -3 and isinstance(amounts[0], (int, float))
    assert sheet.freeze_panes == "A3"
    header = [r[1] for r in book["About"].iter_rows(values_only=True)]
    assert "run0123456789abc" in header and "f" * 64 in header


def test_xlsx_values_equal_csv_values(conn, tricky, tmp_path):
    write_csv(conn, tricky, tmp_path / "a.csv")
    write_xlsx(conn, report(), [tricky], tmp_path / "a.xlsx")
    csv_rows = read_csv(tmp_path / "a.csv")[1:]
    sheet = openpyxl.load_workbook(tmp_path / "a.xlsx")["Section tricky"]
    for csv_row, xlsx_row in zip(csv_rows, sheet.iter_rows(min_row=3, values_only=True), strict=True):
        neutralized = csv_row[1].startswith("'") and csv_row[1][1:].startswith(("=", "+", "-", "@", "\t", "\r"))
        label = csv_row[1][1:] if neutralized else csv_row[1]
        if xlsx_row[1] is not None and len(label) <= MAX_CELL_CHARS and "\x01" not in label:
            assert unescape(xlsx_row[1]) == label
        assert (float(csv_row[2]) if csv_row[2] else None) == xlsx_row[2]


def test_json_is_faithful_and_parses(conn, tricky, tmp_path):
    path = tmp_path / "out.json"
    assert write_json(conn, report(), [tricky], path) == tricky.row_count
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["report"]["run_id"] == "run0123456789abc"
    assert doc["report"]["key_figures"][1] == {"label": "MTTA", "value": 42.5, "unit": "min", "text": "42.5 min"}
    section = doc["sections"][0]
    assert section["row_count"] == len(section["rows"]) == tricky.row_count
    labels = [r["label"] for r in section["rows"]]
    assert labels[: len(DANGEROUS)] == DANGEROUS  # JSON is data: no neutralization
    assert section["rows"][0]["amount"] == -3 and section["rows"][0]["day"] == "2026-06-01"
    assert section["rows"][-1]["amount"] == 1.5
    assert section["rows"][-2] == {"tenant_id": "acme", "label": None, "amount": None, "day": None}


def pdf_text(path) -> str:
    # pypdf returns some runs of WeasyPrint's subset fonts as UTF-16 with NUL high bytes.
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(str(path)).pages).replace("\x00", "")


def test_pdf_has_header_figures_pages_and_provenance(conn, tricky, tmp_path):
    path = tmp_path / "out.pdf"
    write_pdf(conn, report(), [tricky], path)
    assert path.read_bytes().startswith(b"%PDF")
    text = pdf_text(path)
    for expected in ("Test report", "Acme Corp", "June 2026", "1,234", "42.5", "Page 1 of", "run0123456789abc", "Amounts"):
        assert expected in text
    assert "file:///etc/passwd" in text  # shown as escaped text, never fetched


def test_pdf_row_cap_says_what_was_left_out(conn, tmp_path):
    big = make_section(conn, "big", [("acme", f"row {i}", Decimal(i), None) for i in range(1200)])
    path = tmp_path / "capped.pdf"
    assert write_pdf(conn, report(charts=()), [big], path, row_cap=100) == 100
    text = " ".join(pdf_text(path).split())
    assert "Showing 100 of 1,200 rows; the full data is in the CSV/XLSX/JSON files of this run." in text


def test_pdf_degraded_banner(conn, tricky, tmp_path):
    path = tmp_path / "degraded.pdf"
    write_pdf(conn, report(degraded=True, degraded_reason="connector feed 6 hours late"), [tricky], path)
    assert "DEGRADED: connector feed 6 hours late" in pdf_text(path)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://127.0.0.1/", "https://example.com/x.png", "ftp://x/y"])
def test_pdf_fetcher_refuses_files_and_network(url):
    with pytest.raises(ValueError, match="disallowed protocol"):
        safe_url_fetcher().fetch(url)


def test_pdf_fetcher_allows_inline_data():
    response = safe_url_fetcher().fetch("data:text/plain;base64,aGk=")
    assert response.read() == b"hi"


def test_csv_and_xlsx_stream_in_bounded_memory(conn, tmp_path):
    table = f'snapshots."t_{uuid.uuid4().hex[:10]}_large"'
    with conn, conn.cursor() as cur:
        cur.execute(f"create table {table} (_ordinal bigint generated always as identity, tenant_id text, "
                    "label text, amount numeric, day date)")
        cur.execute(f"insert into {table} (tenant_id, label, amount, day) select 'acme', 'label ' || g, g, "
                    "date '2026-01-01' + (g % 300) from generate_series(1, 100000) g")
    section = SectionSnapshot("large", "Large", table, COLUMNS, ("_ordinal",), 100_000)
    peaks = {}
    for name, write in (("csv", lambda p: write_csv(conn, section, p)),
                        ("json", lambda p: write_json(conn, report(), [section], p)),
                        ("xlsx", lambda p: write_xlsx(conn, report(), [section], p))):
        tracemalloc.start()
        rows = write(tmp_path / f"large.{name}")
        conn.commit()
        peaks[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert rows == 100_000
    # 100,000 rows are ~3 MB as CSV and ~30 MB as Python tuples: a writer holding them all exceeds these bounds.
    assert peaks["csv"] < 2_000_000, peaks
    assert peaks["json"] < 10_000_000, peaks
    assert peaks["xlsx"] < 10_000_000, peaks


def test_line_chart_breaks_at_missing_values_instead_of_drawing_zero():
    import datetime as dt

    from orchestration.exports import ChartSpec
    from orchestration.exports.charts import render_svg

    spec = ChartSpec(section="s", kind="line", x="day", y=("pct",), title="SLA met per day")
    days = [dt.date(2026, 6, d) for d in range(1, 6)]
    svg = render_svg(spec, ["day", "pct"], list(zip(days, [90, 95, None, 80, 85], strict=True)))
    assert svg.count("<polyline") == 2  # two runs either side of the day without data
    bottom = 240 - 46  # HEIGHT - BOTTOM: where a zero would be drawn
    assert f",{bottom}.0" not in svg.split("<polyline", 1)[1]


def test_xlsx_continues_on_a_numbered_sheet_past_the_row_limit(conn, tricky, tmp_path, monkeypatch):
    """Excel's 1,048,575 data rows, scaled down: nothing is dropped, the rest goes on sheet (2)."""
    from orchestration.exports import xlsx_export

    monkeypatch.setattr(xlsx_export, "MAX_DATA_ROWS", 2)
    section = tricky
    xlsx_export.write_xlsx(conn, report(), [section], tmp_path / "split.xlsx")
    book = openpyxl.load_workbook(tmp_path / "split.xlsx", read_only=True)
    data = list(book.worksheets[1:])
    assert [ws.title for ws in data][:2] == ["Section tricky", "Section tricky (2)"]
    assert sum(ws.max_row - xlsx_export.HEADER_ROWS for ws in data) == section.row_count
    book.close()


def test_bench_prints_every_format_with_its_ratio(built):
    from tests.helpers.cli import run

    # A process of its own: the benchmark measures this process's peak memory.
    out = run("bench", "exports", "--rows", "3000", timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:8]] == ["(idle)", "copy", "csv", "json", "xlsxwriter", "xlsx", "pdf"]
    assert lines[8:9] and lines[8].startswith("saved to ")  # the evidence pack keeps the latest output
    assert "x raw COPY" in out.stdout and "x bare xlsxwriter" in out.stdout
    json_line = next(line for line in lines if line.startswith("json "))
    assert "raw COPY (target >= 0.5x)" in json_line
    # the second reader found every one of the 3,000 rows as the generator made it
    assert "every row read back equal (python-calamine)" in out.stdout, out.stdout


TYPED = (Column("name", "text", "Name"), Column("n", "bigint", "N"), Column("share", "numeric", "Share (%)"),
         Column("day", "date", "Day"), Column("at", "timestamptz", "At"), Column("ok", "boolean", "OK"))
TYPED_ROWS = [
    ("plain", 1, Decimal("3.00"), dt.date(2026, 6, 1), dt.datetime(2026, 6, 1, 3, 4, 5, 250000, tzinfo=dt.UTC), True),
    ("_x000D_ literal & <b>", -2, Decimal("1.50"), dt.date(1900, 1, 15), dt.datetime(2026, 6, 2, tzinfo=dt.UTC), False),
    (" padded ", 10**15, Decimal("-0.25"), dt.date(1900, 3, 1), None, None),
    (None, None, None, None, None, None),
]


@pytest.fixture(scope="module")
def typed(conn):
    table = f'snapshots."t_{uuid.uuid4().hex[:10]}_typed"'
    with conn, conn.cursor() as cur:
        cur.execute(f"create table {table} (_ordinal bigint generated always as identity, name text, n bigint, "
                    "share numeric, day date, at timestamptz, ok boolean)")
        cur.executemany(f"insert into {table} (name, n, share, day, at, ok) values (%s, %s, %s, %s, %s, %s)", TYPED_ROWS)
    return SectionSnapshot("typed", "Typed", table, TYPED, ("_ordinal",), len(TYPED_ROWS))


def test_xlsx_streamed_sheet_reads_back_typed_cell_by_cell(conn, typed, tmp_path):
    """Our own sheet XML, read back by openpyxl: every value with its type, as inserted."""
    path = tmp_path / "typed.xlsx"
    assert write_xlsx(conn, report(), [typed], path) == len(TYPED_ROWS)
    sheet = openpyxl.load_workbook(path)["Typed"]
    assert [c.value for c in sheet[2]] == ["Name", "N", "Share (%)", "Day", "At", "OK"]
    assert sheet.freeze_panes == "A3" and sheet.auto_filter.ref == f"A2:F{2 + len(TYPED_ROWS)}"
    for row, want in zip(sheet.iter_rows(min_row=3), TYPED_ROWS, strict=True):
        name, n, share, day, at, ok = (c.value for c in row)
        assert unescape(name) == want[0] and (row[0].data_type == "s" or want[0] is None)
        assert n == want[1] and share == (None if want[2] is None else float(want[2]))
        assert (day.date() if day else None) == want[3]  # serials across Excel's phantom 29 February 1900
        assert at == (want[4].replace(tzinfo=None) if want[4] else None)  # UTC, to the microsecond Excel keeps
        assert ok is want[5]
    assert sheet["B3"].number_format == "#,##0" and sheet["C3"].number_format == "0.0"
    assert sheet["E3"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert sheet.oddFooter.left.text == "INTERNAL"


def test_xlsx_bytes_depend_on_rows_and_generated_at_only(conn, typed, tmp_path):
    """A rerun reproduces the file: zip times and docProps come from generated_at (a date long
    past, so a clock-stamped part would show), and nothing random is in it."""
    import zipfile

    first, second = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    write_xlsx(conn, report(), [typed], first)
    write_xlsx(conn, report(), [typed], second)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as book:
        assert {m.date_time for m in book.infolist()} == {(2026, 7, 1, 3, 0, 0)}
        assert b"<dcterms:created xsi:type=\"dcterms:W3CDTF\">2026-07-01T03:00:00Z<" in book.read("docProps/core.xml")
    later = tmp_path / "c.xlsx"
    write_xlsx(conn, report(generated_at=dt.datetime(2026, 7, 2, 3, 0, tzinfo=dt.UTC)), [typed], later)
    assert later.read_bytes() != first.read_bytes()


def test_json_rows_are_laid_out_as_json_dumps_lays_them_out(conn, typed, tmp_path):
    """Postgres serializes the rows now: the file is still the same text, recomputed here from the
    inserted rows with json.dumps (integral numerics as integers, others as floats); the one
    change is Postgres's ISO 8601 for times, which leaves out trailing zeros of fractional seconds."""
    path = tmp_path / "typed.json"
    empty = SectionSnapshot("none", "None", f"(select * from {typed.table} where false) as e", TYPED, ("_ordinal",), 0)
    assert write_json(conn, report(), [typed, empty], path) == len(TYPED_ROWS)

    def value(v):
        if isinstance(v, Decimal):
            return int(v) if v == v.to_integral_value() else float(v)
        if isinstance(v, dt.datetime):
            return re.sub(r"(\.\d*?)0+(?=[+-])", r"\1", v.isoformat())
        return v.isoformat() if isinstance(v, dt.date) else v

    lines = [json.dumps({c.name: value(v) for c, v in zip(TYPED, row, strict=True)}, ensure_ascii=False) for row in TYPED_ROWS]
    text = path.read_text(encoding="utf-8")
    assert '"rows": [\n  ' + ",\n  ".join(lines) + "]}," in text
    assert text.endswith('"rows": []}\n]}\n')
    doc = json.loads(text)
    assert [s["name"] for s in doc["sections"]] == ["typed", "none"] and doc["sections"][1]["rows"] == []
