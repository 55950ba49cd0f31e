"""The workbook's cell styles: one fixed table, so a style is an index known before any sheet
is written (the streamed writer cannot collect formats as it goes and list them afterwards)."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NUMBER_FORMAT_IDS = {"#,##0": 3, "0.0": 164, "#,##0.0": 165, "yyyy-mm-dd": 166, "yyyy-mm-dd hh:mm:ss": 167}
_BUILTIN_FORMATS = {3}
# (name, font index, fill index, number format, alignment)
_STYLES = (
    ("default", 0, 0, None, ""),
    ("header", 1, 2, None, '<alignment vertical="top" wrapText="1"/>'),
    ("marking", 2, 0, None, ""),
    ("date", 0, 0, "yyyy-mm-dd", ""),
    ("datetime", 0, 0, "yyyy-mm-dd hh:mm:ss", ""),
    ("label", 3, 0, None, ""),
    ("title", 4, 0, None, ""),
    ("wrap", 0, 0, None, '<alignment vertical="top" wrapText="1"/>'),
    ("#,##0", 0, 0, "#,##0", ""),
    ("0.0", 0, 0, "0.0", ""),
    ("#,##0.0", 0, 0, "#,##0.0", ""),
)
STYLE = {name: i for i, (name, *_rest) in enumerate(_STYLES)}
_FONTS = ('<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>',
          '<font><b/><sz val="11"/><color rgb="FFFFFFFF"/><name val="Calibri"/><family val="2"/></font>',
          '<font><b/><sz val="11"/><color rgb="FFB00020"/><name val="Calibri"/><family val="2"/></font>',
          '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>',
          '<font><b/><sz val="14"/><name val="Calibri"/><family val="2"/></font>')
_FILLS = ('<fill><patternFill patternType="none"/></fill>', '<fill><patternFill patternType="gray125"/></fill>',
          '<fill><patternFill patternType="solid"><fgColor rgb="FF1F2A44"/><bgColor indexed="64"/></patternFill></fill>')


def styles_xml() -> str:
    custom = "".join(f'<numFmt numFmtId="{i}" formatCode={quoteattr(code)}/>'
                     for code, i in NUMBER_FORMAT_IDS.items() if i not in _BUILTIN_FORMATS)
    xfs = []
    for _name, font, fill, number_format, alignment in _STYLES:
        fmt_id = NUMBER_FORMAT_IDS[number_format] if number_format else 0
        applied = (' applyNumberFormat="1"' if fmt_id else "") + (' applyFont="1"' if font else "") + \
                  (' applyFill="1"' if fill else "") + (' applyAlignment="1"' if alignment else "")
        body = f">{alignment}</xf>" if alignment else "/>"
        xfs.append(f'<xf numFmtId="{fmt_id}" fontId="{font}" fillId="{fill}" borderId="0" xfId="0"{applied}{body}')
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet xmlns="{MAIN_NS}">'
            f'<numFmts count="{len(NUMBER_FORMAT_IDS) - len(_BUILTIN_FORMATS)}">{custom}</numFmts>'
            f'<fonts count="{len(_FONTS)}">{"".join(_FONTS)}</fonts><fills count="{len(_FILLS)}">{"".join(_FILLS)}</fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
            f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
            '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
            '<dxfs count="0"/><tableStyles count="0"/></styleSheet>')
