"""Classification markings and the redacted variant, as a reader of each file sees them; and
numbers, labels, sheets and key figures that read well."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from decimal import Decimal

import openpyxl
import pypdf
import pytest

from orchestration.db import warehouse
from orchestration.exports import checks, numbers
from orchestration.exports.charts import render_svg, ticks
from orchestration.exports.json_export import write_json
from orchestration.exports.pdf_export import write_pdf
from orchestration.exports.sections import (
    REDACTION_MASK,
    ChartSpec,
    Column,
    KeyFigure,
    RedactionNote,
    ReportContext,
    SectionSnapshot,
)
from orchestration.exports.xlsx_export import HEADER_ROWS, sheet_name, write_xlsx

MM = 72 / 25.4  # PDF points per millimetre
COLUMNS = (Column("tenant_id", "text", "Tenant"), Column("control_id", "text", "Control"),
           Column("status", "text", "Status"), Column("owner_name", "text", "Owner"),
           Column("mttr_minutes", "numeric", "MTTR (min)"), Column("current_pct", "numeric", "Current (%)"),
           Column("evidence", "bigint", "Evidence collected"), Column("day", "date", "Day"))


@pytest.fixture(scope="module")
def conn():
    with warehouse.connection() as c:
        yield c


@pytest.fixture(scope="module")
def controls(conn):
    """300 controls of one tenant: enough rows for several PDF pages."""
    table = f'snapshots."t_{uuid.uuid4().hex[:10]}_controls"'
    rows = [("acme", f"CC6.{i}-ACCESS-REVIEW-{i:03d}", ("in_progress", "tier2", "missing")[i % 3], REDACTION_MASK,
             Decimal("3875.7") if i == 0 else (None if i == 1 else Decimal(i) + Decimal("0.25")),
             Decimal("97.25"), i, dt.date(2026, 6, 1 + i % 30)) for i in range(300)]
    with conn, conn.cursor() as cur:
        cur.execute(f"create table {table} (_ordinal bigint generated always as identity, tenant_id text, "
                    "control_id text, status text, owner_name text, mttr_minutes numeric, current_pct numeric, "
                    "evidence bigint, day date)")
        cur.executemany(f"insert into {table} (tenant_id, control_id, status, owner_name, mttr_minutes, current_pct, "
                        "evidence, day) values (%s, %s, %s, %s, %s, %s, %s, %s)", rows)
    return SectionSnapshot("control_status", "Controls (missing and stale first)", table, COLUMNS, ("_ordinal",), 300)


def context(**changes) -> ReportContext:
    base = ReportContext(
        template_key="compliance_evidence_summary", template_version=1, title="Compliance evidence summary",
        tenant_id="acme", tenant_name="Acme Corp", period_label="June 2026", window_start=dt.date(2026, 6, 1),
        window_end=dt.date(2026, 7, 1), run_id="run0123456789abc", input_hash="e" * 64,
        generated_at=dt.datetime(2026, 7, 1, 3, 0, tzinfo=dt.UTC),
        key_figures=(KeyFigure("Controls", 300), KeyFigure("Controls current", 97.3, "%"),
                     KeyFigure("Mean time to resolve", 3875.7, "min"), KeyFigure("Evidence rejected", None)),
        charts=(ChartSpec("control_status", "bar", "status", ("evidence", "mttr_minutes"), "Evidence by status"),),
        primary_section="control_status", sensitivity="restricted",
    )
    return dataclasses.replace(base, **changes)


EXTERNAL = dict(variant="external", redaction_policy="the redaction policy of compliance_evidence_summary v1",
                redactions=(RedactionNote("Owner", "mask", "auditors need the status, not who owns it"),))


def page_texts(path) -> list[str]:
    return [p.extract_text().replace("\x00", "") for p in pypdf.PdfReader(str(path)).pages]


def margin_texts(page) -> tuple[str, str]:
    """(text in the top margin, text in the bottom margin) of a page, by position."""
    height = float(page.mediabox.height)
    top, bottom = [], []

    def visit(text, cm, tm, font, size):
        y = tm[5] * cm[3] + cm[5] if cm[3] else tm[5]
        if y > height - 20 * MM:
            top.append(text)
        elif y < 22 * MM:
            bottom.append(text)

    page.extract_text(visitor_text=visit)
    return "".join(top).replace("\x00", ""), "".join(bottom).replace("\x00", "")


def test_every_pdf_page_carries_the_marking_in_header_and_footer(conn, controls, tmp_path):
    path = tmp_path / "restricted.pdf"
    write_pdf(conn, context(), [controls], path)
    pages = pypdf.PdfReader(str(path)).pages
    assert len(pages) >= 3, "the test needs several pages to say 'every page'"
    for number, page in enumerate(pages, 1):
        top, bottom = margin_texts(page)
        assert "RESTRICTED" in top, f"page {number} header: {top!r}"
        assert "RESTRICTED" in bottom, f"page {number} footer: {bottom!r}"
    assert checks.check_pdf(path, [controls], context()) == []
    # The output check reads the marking back: a file marked lower than its template is refused.
    problems = checks.check_pdf(path, [controls], context(sensitivity="confidential"))
    assert problems and "CONFIDENTIAL marking" in problems[0]


def test_the_pdf_check_refuses_a_file_cut_short_or_not_a_pdf(conn, controls, tmp_path):
    path = tmp_path / "cut.pdf"
    write_pdf(conn, context(), [controls], path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # a write that stopped a third of the way
    problems = checks.check_pdf(path, [controls], context())
    assert problems, "a PDF cut short passed the check"
    path.write_bytes(b"%PDF-1.7\nnot really\n")
    assert checks.check_pdf(path, [controls], context())[0].startswith("not a readable PDF")


def test_external_pdf_says_it_is_redacted_under_which_policy_and_never_splits_a_marker(conn, controls, tmp_path):
    path = tmp_path / "external.pdf"
    write_pdf(conn, context(**EXTERNAL), [controls], path)
    texts = page_texts(path)
    first = " ".join(texts[0].split())
    assert "EXTERNAL (REDACTED) VARIANT" in first
    assert "redactions were applied under the redaction policy of compliance_evidence_summary v1" in first
    assert "Owner: masked" in first
    assert all("EXTERNAL (REDACTED)" in margin_texts(p)[0] for p in pypdf.PdfReader(str(path)).pages)
    markers = sum(line.count(REDACTION_MASK) for text in texts for line in text.splitlines())
    assert markers == controls.row_count  # every marker whole on one line (a split one would not count)
    internal = tmp_path / "internal.pdf"
    write_pdf(conn, context(), [controls], internal)
    assert "REDACTED" not in " ".join(page_texts(internal))


def test_pdf_numbers_labels_and_layout_read_well(conn, controls, tmp_path):
    path = tmp_path / "numbers.pdf"
    write_pdf(conn, context(), [controls], path)
    text = "\n".join(page_texts(path))
    lines = text.splitlines()
    assert "2.7 days" in text  # 3,875.7 min, a key figure and a cell
    assert "97.3" in text and "97.25" not in text  # one decimal for a share
    assert "In progress" in text and "Tier 2" in text and "in_progress" not in text and "tier2" not in text
    assert "\u2014" in text  # the empty MTTR and the key figure without a value
    assert "MTTR" in text and "MTTR (min)" not in text  # cells carry their duration unit
    # The control ids are never broken mid-token; the tenant column of a one-tenant report is left out.
    assert all(any(f"CC6.{i}-ACCESS-REVIEW-{i:03d}" in line for line in lines) for i in range(0, 300, 37))
    assert not any(line.split()[:1] == ["acme"] for line in lines)
    assert "Acme Corp (acme)" in text


def test_chart_ticks_are_round_and_the_top_one_is_above_the_highest_bar():
    assert ticks(97.3) == [0, 25, 50, 75, 100]
    assert ticks(100) == [0, 25, 50, 75, 100, 125]
    assert ticks(3875.7) == [0, 1000, 2000, 3000, 4000]
    assert ticks(0.42) == [0, 0.2, 0.4, 0.6]
    for highest in (1, 7, 13, 99.9, 250, 1234.5):
        scale = ticks(highest)
        assert scale[-1] > highest and scale[-2] <= highest
        step = scale[1]
        assert all(abs(b - a - step) < 1e-9 for a, b in zip(scale, scale[1:], strict=False))


def test_chart_legend_names_only_series_with_data_by_their_labels():
    spec = ChartSpec("s", "bar", "team", ("resolved", "ack_sla_attainment_pct"), "By team")
    columns = [Column("team", "text", "Team"), Column("resolved", "bigint", "Resolved"),
               Column("ack_sla_attainment_pct", "numeric", "Ack SLA met (%)")]
    svg = render_svg(spec, columns, [("tier2", 5, None), ("in_progress", 7, None)])
    assert "Resolved" in svg and "Ack SLA met" not in svg and "ack sla attainment pct" not in svg
    assert ">Tier 2<" in svg and ">In progress<" in svg
    both = render_svg(spec, columns, [("tier1", 5, 91.0)])
    assert "Ack SLA met (%)" in both


def test_numbers_one_rule_per_unit():
    assert numbers.duration(3875.7) == "2.7 days"
    assert numbers.duration(150) == "2.5 h" and numbers.duration(42.46) == "42.5 min"
    assert numbers.number(Decimal("97.25"), "%") == "97.3" and numbers.number(12345, "") == "12,345"
    assert numbers.number(Decimal("812.4"), "ms") == "812"
    assert numbers.key_figure_parts(None, "%") == ("\u2014", "")
    assert numbers.key_figure_parts(3875.7, "min") == ("2.7", "days")
    assert numbers.code_label("in_progress") == "In progress" and numbers.code_label("tier2") == "Tier 2"
    assert numbers.code_label("initial-access") == "Initial access" and numbers.code_label("SOC2") == "SOC2"
    assert numbers.code_label("b9e001e7dc548bed") == "b9e001e7dc548bed"  # a pseudonym of the external variant
    assert numbers.cell(None, Column("x", "numeric")) == "\u2014"
    assert numbers.cell("acme", Column("tenant_id", "text")) == "acme"  # an identifier is never relabelled


def test_xlsx_about_and_every_sheet_carry_the_marking_and_the_variant(conn, controls, tmp_path):
    path = tmp_path / "external.xlsx"
    write_xlsx(conn, context(**EXTERNAL), [controls], path)
    book = openpyxl.load_workbook(path)
    about = book["About"]
    facts = {row[0]: row[1] for row in about.iter_rows(values_only=True) if row[0]}
    assert about["A1"].value.startswith("RESTRICTED · EXTERNAL (REDACTED) VARIANT")
    assert facts["Classification"] == "RESTRICTED" and facts["Variant"] == "external (redacted)"
    assert "under the redaction policy of compliance_evidence_summary v1" in facts["Redactions"]
    for sheet in book.worksheets:
        assert sheet["A1"].value.startswith("RESTRICTED"), sheet.title
        assert "RESTRICTED" in sheet.oddHeader.center.text
    internal = tmp_path / "internal.xlsx"
    write_xlsx(conn, context(), [controls], internal)
    facts = {r[0]: r[1] for r in openpyxl.load_workbook(internal)["About"].iter_rows(values_only=True) if r[0]}
    assert facts["Variant"] == "internal (complete)" and "Redactions" not in facts


def test_xlsx_tables_have_autofilter_widths_and_formats_and_key_figures_are_numbers(conn, controls, tmp_path):
    path = tmp_path / "book.xlsx"
    write_xlsx(conn, context(), [controls, dataclasses.replace(controls, name="second")], path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["About", "Controls (missing and stale", "Controls (missing and stale (2)"]
    for sheet in book.worksheets[1:]:
        assert sheet.auto_filter.ref == f"A{HEADER_ROWS}:H{HEADER_ROWS + controls.row_count}"
        row = list(sheet[HEADER_ROWS + 1])
        assert row[4].value == 3875.7 and row[4].number_format == "#,##0.0"  # MTTR, one decimal
        assert row[5].number_format == "0.0" and row[6].number_format == "#,##0"  # a share, a count
        assert row[7].is_date and row[7].number_format == "yyyy-mm-dd"
        widths = {c: sheet.column_dimensions[c].width for c in "ABCDEFGH"}
        assert widths["B"] > widths["A"]  # the control ids are longer than the tenant id
        assert widths["B"] >= len("CC6.299-ACCESS-REVIEW-299")
    figures = {}
    about = book["About"]
    for row in about.iter_rows(min_row=1):
        if row[0].value in ("Controls", "Controls current", "Mean time to resolve", "Evidence rejected"):
            figures[row[0].value] = (row[1].value, row[1].number_format, row[2].value)
    assert figures["Controls"] == (300, "#,##0", None)
    assert figures["Controls current"] == (97.3, "0.0", "%")
    assert figures["Mean time to resolve"] == (3875.7, "#,##0.0", "min")
    assert figures["Evidence rejected"][0] == "no value in this period"


def test_sheet_names_cut_at_word_boundaries_and_unique():
    taken: set[str] = set()
    names = [sheet_name(t, taken) for t in ("Controls (missing and stale first)", "Controls (missing and stale first)",
                                            "Mean time to resolve by severity and team", "A/B: [draft]?")]
    assert names == ["Controls (missing and stale", "Controls (missing and stale (2)", "Mean time to resolve by", "AB draft"]
    assert all(len(n) <= 31 and n == n.strip() for n in names)


def test_json_states_classification_key_figures_as_numbers_and_column_labels(conn, controls, tmp_path):
    path = tmp_path / "report.json"
    write_json(conn, context(**EXTERNAL), [controls], path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    header = doc["report"]
    assert header["classification"] == "RESTRICTED" and header["sensitivity"] == "restricted"
    assert header["variant"] == "external" and header["redactions"][0]["column"] == "Owner"
    assert header["key_figures"][2] == {"label": "Mean time to resolve", "value": 3875.7, "unit": "min",
                                        "text": "2.7 days"}
    assert header["key_figures"][3]["value"] is None
    columns = {c["name"]: c for c in doc["sections"][0]["columns"]}
    assert columns["mttr_minutes"] == {"name": "mttr_minutes", "label": "MTTR (min)", "type": "numeric", "unit": "min"}
    assert columns["current_pct"]["unit"] == "%" and columns["control_id"]["label"] == "Control"
    assert checks.check_json(path, [controls], context(**EXTERNAL)) == []


def test_a_nearly_empty_last_page_is_saved_by_a_tighter_layout(conn, controls, tmp_path, monkeypatch):
    """Row counts that spill a few rows onto a last page: the tighter layout takes that page back,
    and it is never used when it would not save one."""
    from orchestration.exports import pdf_export

    def pages(n: int, threshold: float) -> int:
        monkeypatch.setattr(pdf_export, "NEARLY_EMPTY", threshold)
        path = tmp_path / f"{n}-{threshold}.pdf"
        write_pdf(conn, context(charts=()), [controls], path, row_cap=n)
        return len(pypdf.PdfReader(str(path)).pages)

    saved = []
    for n in (26, 38, 42, 60, 86):  # 38, 42 and 86 rows spill onto a third of a page or less
        loose, tight = pages(n, 0.0), pages(n, 0.3)
        assert tight <= loose
        if tight < loose:
            saved.append(n)
    assert saved, "no row count spilled onto a nearly empty page: the test proves nothing"


def test_a_chart_of_long_durations_is_drawn_in_days():
    spec = ChartSpec("s", "bar", "team", ("mttr_minutes",), "Mean time to resolve by team (min)")
    columns = [Column("team", "text", "Team"), Column("mttr_minutes", "numeric", "MTTR (min)")]
    svg = render_svg(spec, columns, [("tier1", 3875.7), ("ir", 5400.0)])
    assert ">MTTR (days)<" in svg and ">4<" in svg and ">4,000<" not in svg  # 5,400 min = 3.75 days: ticks 0..4
    short = render_svg(spec, columns, [("tier1", 42.0)])
    assert ">MTTR (min)<" in short
