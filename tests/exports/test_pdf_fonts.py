"""Font subsets made once per process (exports/pdf_fonts.py): a second PDF reuses them, still
reads back with its text and embedded fonts, and the same report gives the same bytes whether
its subsets came from the cache or not."""

from __future__ import annotations

import datetime as dt
import io
import os
import uuid
from decimal import Decimal

import pypdf
import pytest
import weasyprint
from fontTools import subset as ft_subset
from fontTools.misc.timeTools import timestampNow
from fontTools.ttLib import TTFont

from orchestration.db import warehouse
from orchestration.exports import pdf_fonts
from orchestration.exports.pdf_export import font_timestamps, write_pdf
from orchestration.exports.sections import Column, KeyFigure, ReportContext, SectionSnapshot

COLUMNS = (Column("tenant_id", "text", "Tenant"), Column("label", "text", "Label"),
           Column("amount", "numeric", "Amount"))
DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


@pytest.fixture(scope="module")
def conn():
    with warehouse.connection() as c:
        yield c


def section(conn, labels: list[str]) -> SectionSnapshot:
    table = f'snapshots."t_{uuid.uuid4().hex[:10]}_fonts"'
    with conn, conn.cursor() as cur:
        cur.execute(f"create table {table} (_ordinal bigint generated always as identity, tenant_id text, "
                    "label text, amount numeric)")
        cur.executemany(f"insert into {table} (tenant_id, label, amount) values (%s, %s, %s)",
                        [("acme", label, Decimal(i)) for i, label in enumerate(labels)])
    return SectionSnapshot("labels", "Labels", table, COLUMNS, ("_ordinal",), len(labels))


def report(at: dt.datetime = dt.datetime(2026, 7, 1, 3, 0, tzinfo=dt.UTC)) -> ReportContext:
    return ReportContext(
        template_key="fonts", template_version=1, title="Font report", tenant_id="acme", tenant_name="Acme Corp",
        period_label="June 2026", window_start=dt.date(2026, 6, 1), window_end=dt.date(2026, 7, 1),
        run_id="run0123456789abc", input_hash="f" * 64, generated_at=at,
        key_figures=(KeyFigure("Incidents opened", 1234),), charts=(), primary_section="labels")


def text_of(path) -> str:
    return " ".join(p.extract_text().replace("\x00", "") for p in pypdf.PdfReader(str(path)).pages)


def embedded_fonts(path) -> dict[str, TTFont]:
    """Each embedded font program by its PDF font name (the subset prefix stripped)."""
    found = {}
    for page in pypdf.PdfReader(str(path)).pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
            program = descriptor["/FontFile2"].get_object().get_data()
            found[str(font["/BaseFont"]).split("+", 1)[1]] = TTFont(io.BytesIO(program))
    return found


def test_a_second_pdf_reuses_the_subsets_and_reads_back_with_its_text_and_fonts(conn, tmp_path):
    pdf_fonts.clear()
    write_pdf(conn, report(), [section(conn, ["Firewall", "Endpoint", "Zoë Müller"])], tmp_path / "a.pdf")
    made = pdf_fonts.stats.made
    assert made >= 2  # regular and bold DejaVu Sans, subset once each
    second = tmp_path / "b.pdf"
    write_pdf(conn, report(), [section(conn, ["Quarantine queue", "José Ñúñez", "VPN gateway #7 – 95%"])], second)
    assert pdf_fonts.stats.made == made, "a document within the superset makes no new subset"
    assert pdf_fonts.stats.reused >= made
    text = " ".join(text_of(second).split())
    for expected in ("Quarantine queue", "José Ñúñez", "VPN gateway #7 – 95%", "1,234", "Font report"):
        assert expected in text
    fonts = embedded_fonts(second)
    assert {name.split("-")[0] for name in fonts} == {"DejaVu"}
    for name, font in fonts.items():
        assert "glyf" in font and "GSUB" not in font and "GPOS" not in font, name


def test_a_glyph_beyond_the_superset_is_embedded_and_its_text_extractable(conn, tmp_path):
    write_pdf(conn, report(), [section(conn, ["Warm-up"])], tmp_path / "warm.pdf")
    made = pdf_fonts.stats.made
    path = tmp_path / "greek.pdf"
    write_pdf(conn, report(), [section(conn, ["Ωmega ΔT check"])], path)
    assert pdf_fonts.stats.made > made, "a glyph outside the superset needs its own subset"
    assert "Ωmega ΔT check" in text_of(path)
    regular = next(f for name, f in embedded_fonts(path).items() if "Bold" not in name)
    glyph_name = regular.getBestCmap()[ord("Ω")]
    assert regular["glyf"][glyph_name].numberOfContours > 0, "Ω is drawn, not an empty glyph"


def test_the_same_report_gives_the_same_bytes_from_the_cache_or_a_fresh_process(conn, tmp_path):
    rows = section(conn, ["Firewall", "Endpoint"])
    write_pdf(conn, report(dt.datetime(2026, 5, 1, tzinfo=dt.UTC)), [rows], tmp_path / "earlier.pdf")
    reused = pdf_fonts.stats.reused
    write_pdf(conn, report(), [rows], tmp_path / "cached.pdf")
    assert pdf_fonts.stats.reused > reused  # subsets made at another generation time, stamped anew
    pdf_fonts.clear()
    write_pdf(conn, report(), [rows], tmp_path / "fresh.pdf")
    assert (tmp_path / "cached.pdf").read_bytes() == (tmp_path / "fresh.pdf").read_bytes()
    stamps = {f["head"].modified for f in embedded_fonts(tmp_path / "cached.pdf").values()}
    with font_timestamps(report().generated_at):
        assert stamps == {timestampNow()}


def test_restamp_writes_what_fonttools_writes_at_that_time():
    def subset_at(epoch: int) -> bytes:
        options = ft_subset.Options(retain_gids=True, hinting=False)
        subsetter = ft_subset.Subsetter(options)
        subsetter.populate(gids=list(range(3, 90)))
        font = TTFont(DEJAVU, lazy=True)
        subsetter.subset(font)
        out = io.BytesIO()
        before = os.environ.get("SOURCE_DATE_EPOCH")
        os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
        try:
            font.save(out)
        finally:
            os.environ.pop("SOURCE_DATE_EPOCH") if before is None else os.environ.update(SOURCE_DATE_EPOCH=before)
        return out.getvalue()

    early, late = subset_at(1_700_000_000), subset_at(1_790_000_000)
    assert early != late
    assert pdf_fonts.restamp(early, TTFont(io.BytesIO(late))["head"].modified) == late


def test_the_patch_refuses_another_weasyprint_version(monkeypatch):
    monkeypatch.setattr(weasyprint, "__version__", "71.0")
    with pytest.raises(RuntimeError, match="WeasyPrint 71.0 is installed"):
        pdf_fonts.install()
