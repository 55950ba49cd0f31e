"""A streamed SpreadsheetML writer: the XLSX package (zip parts) and its sheets; the cells are
in xlsx_cells.py, the styles in xlsx_styles.py.

Why our own and not a library: xlsxwriter spends its time in per-cell Python calls (about 11,500
rows/s here), and of the faster writers on PyPI we measured, pyexcelerate took as long and holds
the sheet in memory, and rustpy-xlsxwriter (about 4x, rows as dicts) stamps the wall clock into
docProps with no option to set it, which breaks byte-identical reruns. Writing the About sheet with xlsxwriter and the data sheets
with this writer is not practical either: each owns the zip and the styles part.

Here a data row is one `str.format` call over per-column cell encoders chosen once from the
column types; strings are inline (no shared-string table to hold in memory); each sheet's rows
stream into a temporary file beside the target and are deflated (level 1) into the zip when the
sheet is closed, once its dimension, column widths and filter range are known. Memory stays
constant whatever the row count.

Deterministic: every zip member carries the report's generation time, docProps are derived from
it, and no part holds a random id or the wall clock, so the same rows and the same
`generated_at` give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from orchestration.exports.xlsx_cells import any_cell, clean_text, column_letter
from orchestration.exports.xlsx_styles import MAIN_NS as _MAIN_NS
from orchestration.exports.xlsx_styles import styles_xml

_BATCH_ROWS = 2000  # rows encoded and written at once: a few hundred kB
_DEFLATE_LEVEL = 1  # the sheets are large and repetitive: level 1 is 3-4 times faster than 6 for ~15% more bytes
_LEVEL_FIELD = "compress_level" if "compress_level" in zipfile.ZipInfo.__slots__ else "_compresslevel"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


class Workbook:
    """Sheets are added one at a time (a sheet is finished before the next starts); `close`
    writes the workbook parts that list them."""

    def __init__(self, path: Path, generated_at: dt.datetime, title: str = ""):
        moment = generated_at.astimezone(dt.UTC) if generated_at.tzinfo else generated_at
        self._stamp = max(moment.replace(microsecond=0), dt.datetime(1980, 1, 1, tzinfo=moment.tzinfo))
        self._title = title
        self._dir = path.parent
        self._zip = zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED)
        self._sheets: list[tuple[str, str | None]] = []  # (name, autofilter range)

    def _member(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self._stamp.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        # Python 3.11/3.12 read the level of a ZipInfo opened for writing from a private field,
        # which 3.13 renamed compress_level; without it a member is deflated at level 6.
        setattr(info, _LEVEL_FIELD, _DEFLATE_LEVEL)
        return info

    def _write_part(self, name: str, text: str) -> None:
        self._zip.writestr(self._member(name), text.encode("utf-8"))

    def sheet(self, name: str, *, header: str = "", footer: str = "", frozen_rows: int = 0) -> Sheet:
        return Sheet(self, name, header=header, footer=footer, frozen_rows=frozen_rows)

    def _add_sheet(self, name: str, autofilter: str | None, head: str, body, tail: str) -> None:
        self._sheets.append((name, autofilter))
        size = body.seek(0, 2)
        body.seek(0)
        prefix, suffix = head.encode("utf-8"), tail.encode("utf-8")
        zip64 = len(prefix) + size + len(suffix) > zipfile.ZIP64_LIMIT - (1 << 20)
        with self._zip.open(self._member(f"xl/worksheets/sheet{len(self._sheets)}.xml"), "w", force_zip64=zip64) as out:
            out.write(prefix)
            shutil.copyfileobj(body, out, 1 << 20)
            out.write(suffix)

    def close(self) -> None:
        try:
            self._write_package_parts()
        finally:
            self._zip.close()

    def _write_package_parts(self) -> None:
        n = len(self._sheets)
        sheet_types = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
                              'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for i in range(1, n + 1))
        self._write_part("[Content_Types].xml", (
            f'{_XML}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            f'{sheet_types}<Override PartName="/xl/styles.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
            '<Override PartName="/docProps/app.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/></Types>'))
        self._write_part("_rels/.rels", (
            f'{_XML}<Relationships xmlns="{_PKG_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/'
            'core-properties" Target="docProps/core.xml"/>'
            f'<Relationship Id="rId3" Type="{_REL_NS}/extended-properties" Target="docProps/app.xml"/></Relationships>'))
        stamp = self._stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        self._write_part("docProps/core.xml", (
            f'{_XML}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<dc:title>{xml_escape(clean_text(self._title))}</dc:title><dc:creator>Nexus Reports</dc:creator>"
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>'))
        self._write_part("docProps/app.xml", (
            f'{_XML}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
            "<Application>Nexus Reports</Application></Properties>"))
        sheets = "".join(f'<sheet name={quoteattr(name)} sheetId="{i}" r:id="rId{i}"/>'
                         for i, (name, _f) in enumerate(self._sheets, 1))
        # Excel keeps each autofilter's range in a hidden defined name as well.
        names = "".join(
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
            f"{xml_escape(_quoted_sheet(name))}!{_absolute(ref)}</definedName>"
            for i, (name, ref) in enumerate(self._sheets) if ref)
        self._write_part("xl/workbook.xml", (
            f'{_XML}<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><bookViews><workbookView/></bookViews>'
            f"<sheets>{sheets}</sheets>" + (f"<definedNames>{names}</definedNames>" if names else "") + "</workbook>"))
        rels = "".join(f'<Relationship Id="rId{i}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                       for i in range(1, n + 1))
        self._write_part("xl/_rels/workbook.xml.rels", (
            f'{_XML}<Relationships xmlns="{_PKG_REL_NS}">{rels}'
            f'<Relationship Id="rId{n + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/></Relationships>'))
        self._write_part("xl/styles.xml", styles_xml())


def _quoted_sheet(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _absolute(ref: str) -> str:
    return ":".join(re.sub(r"([A-Z]+)(\d+)", r"$\1$\2", part) for part in ref.split(":"))


class Sheet:
    """One worksheet: rows stream into a temporary file beside the workbook; `close` writes the
    part (dimension, frozen panes, column widths, rows, autofilter, printed header and footer)."""

    def __init__(self, book: Workbook, name: str, *, header: str, footer: str, frozen_rows: int):
        self.book, self.name = book, name
        self._header, self._footer, self._frozen = header, footer, frozen_rows
        # Beside the target, not in /tmp: /tmp may be memory (tmpfs), and a sheet can be large.
        self._body = tempfile.TemporaryFile(dir=book._dir)  # noqa: SIM115 (closed in close())
        self.rows = 0  # the last row number written (1-based)
        self.last_col = 0  # the widest row's last column (0-based)

    def write_cells(self, cells: Iterable[tuple[int, object, int]]) -> None:
        """The next row, from (column, value, style) triples: the general path, for the few rows
        that are not a table's data rows."""
        self.rows += 1
        parts = []
        for col, value, style in cells:
            parts.append(f'<c r="{column_letter(col)}{self.rows}"{any_cell(value, style)}')
            self.last_col = max(self.last_col, col)
        self._body.write(f'<row r="{self.rows}">{"".join(parts)}</row>'.encode())

    def write_rows(self, rows: Iterable[Sequence], row_xml: Callable[[int, Sequence], str], width: int) -> int:
        """Data rows in bulk: each is one call of `row_xml` (row_formatter), written a batch at a
        time (one encode and one write per batch, not per row); returns how many."""
        rows, written = iter(rows), 0
        while True:
            start = self.rows + 1
            batch = list(map(row_xml, range(start, start + _BATCH_ROWS), rows))
            if not batch:
                break
            self._body.write("".join(batch).encode("utf-8"))
            self.rows += len(batch)
            written += len(batch)
        self.last_col = max(self.last_col, width - 1)
        return written

    def close(self, *, widths: Sequence[tuple[float, int | None]] = (), autofilter: str | None = None) -> None:
        """`widths`: per column from A, (width in characters, default style or None)."""
        self._body.flush()
        try:
            last = f"{column_letter(self.last_col)}{max(self.rows, 1)}"
            first_sheet = not self.book._sheets
            selected = ' tabSelected="1"' if first_sheet else ""
            if self._frozen:
                top = f"A{self._frozen + 1}"
                view = (f'<sheetView{selected} workbookViewId="0"><pane ySplit="{self._frozen}" topLeftCell="{top}" '
                        f'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" activeCell="{top}" '
                        f'sqref="{top}"/></sheetView>')
            else:
                view = f'<sheetView{selected} workbookViewId="0"/>'
            cols = "".join(
                f'<col min="{i}" max="{i}" width="{_excel_width(w)}"' + (f' style="{s}"' if s else "") + ' customWidth="1"/>'
                for i, (w, s) in enumerate(widths, 1))
            head = (f'{_XML}<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><dimension ref="A1:{last}"/>'
                    f'<sheetViews>{view}</sheetViews><sheetFormatPr defaultRowHeight="15"/>'
                    + (f"<cols>{cols}</cols>" if cols else "") + "<sheetData>")
            printed = (f"<headerFooter><oddHeader>{xml_escape(self._header)}</oddHeader>"
                       f"<oddFooter>{xml_escape(self._footer)}</oddFooter></headerFooter>")
            tail = ("</sheetData>" + (f'<autoFilter ref="{autofilter}"/>' if autofilter else "")
                    + '<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
                    + (printed if self._header or self._footer else "") + "</worksheet>")
            self.book._add_sheet(self.name, autofilter, head, self._body, tail)
        finally:
            self._body.close()


def _excel_width(chars: float) -> float:
    """A width in characters as Excel stores it (with the cell padding of the default font)."""
    return int((chars * 7 + 5) / 7 * 256) / 256 if chars >= 1 else int(chars * 12 / 256 * 256) / 256
