"""Cell XML for the streamed XLSX writer: text made safe for a cell, and one encoder per column
type that turns a value into the rest of its `<c r="A1"` element, chosen once per column so the
hot loop does no type dispatch. A row is one `str.format` call over its cells' encoders.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from xml.sax.saxutils import escape as xml_escape

from orchestration.exports.xlsx_styles import STYLE

MAX_CELL_CHARS = 32_767
TRUNCATION_MARKER = "…[truncated]"
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Anything a text cell must change before it is XML: markup characters, a carriage return (an
# XML reader would turn it into a line feed), a literal `_xHHHH_` (Excel would decode it),
# the non-characters U+FFFE/U+FFFF and the XML-illegal control characters.
_NEEDS_ESCAPE = re.compile(r"[&<>\r\ufffe\uffff\x00-\x08\x0b\x0c\x0e-\x1f]|_x[0-9a-fA-F]{4}_")
_LITERAL_ESCAPE = re.compile(r"(_x[0-9a-fA-F]{4}_)")
_EXCEL_EPOCH = dt.date(1899, 12, 31).toordinal()
_KNOWN_TEXTS, _KNOWN_TEXT_CHARS = 4096, 64  # per column: short repeated values (tenant, status, team) encoded once
_INLINE, _INLINE_KEPT, _INLINE_END = ' t="inlineStr"><is><t>', ' t="inlineStr"><is><t xml:space="preserve">', "</t></is></c>"


def clean_text(value: str) -> str:
    """What XLSX cannot hold is changed visibly: XML-illegal control characters become U+FFFD,
    cells over Excel's 32,767 characters are cut with a marker."""
    if _ILLEGAL.search(value):
        value = _ILLEGAL.sub("\ufffd", value)
    if len(value) > MAX_CELL_CHARS:
        value = value[: MAX_CELL_CHARS - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER
    return value


def _escape_text(value: str) -> str:
    """Cleaned text as element content, escaped the way Excel (and xlsxwriter) do."""
    value = _LITERAL_ESCAPE.sub(r"_x005F\1", xml_escape(value))
    return value.replace("\r", "_x000D_").replace("\ufffe", "_xFFFE_").replace("\uffff", "_xFFFF_")


Encoder = Callable[[object], str]
_EMPTY = "/>"


def _text_tail(text: str) -> str:
    """An inline string; xml:space="preserve" only where Excel would trim the text."""
    kept = _INLINE_KEPT if text != text.strip() else _INLINE
    if len(text) > MAX_CELL_CHARS or _NEEDS_ESCAPE.search(text):
        text = _escape_text(clean_text(text))
    return kept + text + _INLINE_END


def excel_serial(value: dt.date | dt.datetime) -> float | int:
    """Excel's day number (1900 system, with its phantom 29 February 1900); an aware time in UTC."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        day = excel_serial(value.date())
        seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
        return day + seconds / 86400
    serial = value.toordinal() - _EXCEL_EPOCH
    return serial + 1 if serial > 59 else serial


def _number_text(value) -> str | None:
    """The number as the <v> text, or None when it is not a finite number."""
    cls = value.__class__
    if cls is int:
        return str(value)
    if cls is Decimal:
        return str(value) if value.is_finite() else None
    if cls is float:
        return repr(value) if math.isfinite(value) else None
    return None


def any_cell(value, style: int = 0) -> str:
    """A value of whatever type: the slow, general encoder (About sheet, values not of the column's type)."""
    if value is None:
        return f' s="{style}"/>' if style else _EMPTY
    s = f' s="{style}"' if style else ""
    if isinstance(value, bool):
        return f'{s} t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (int, float, Decimal)):
        number = _number_text(value if value.__class__ in (int, float, Decimal) else float(value))
        if number is not None:
            return f"{s}><v>{number}</v></c>"
        return s + _text_tail(str(value))  # NaN and infinities are not numbers Excel can hold: shown as text
    if isinstance(value, dt.datetime):
        return f' s="{style or STYLE["datetime"]}"><v>{excel_serial(value)!r}</v></c>'
    if isinstance(value, dt.date):
        return f' s="{style or STYLE["date"]}"><v>{excel_serial(value)}</v></c>'
    return s + _text_tail(str(value))


def text_encoder() -> Encoder:
    known: dict[str, str] = {}  # bounded: at most _KNOWN_TEXTS values of at most _KNOWN_TEXT_CHARS

    def text(value) -> str:
        if value is None:
            return _EMPTY
        if value.__class__ is str:
            tail = known.get(value)
            if tail is None:
                tail = _text_tail(value)
                if len(value) <= _KNOWN_TEXT_CHARS and len(known) < _KNOWN_TEXTS:
                    known[value] = tail
            return tail
        return any_cell(value)
    return text


def number_encoder(style: int) -> Encoder:
    head = f' s="{style}"><v>'

    def number(value) -> str:
        if value is None:
            return _EMPTY
        cls = value.__class__
        if cls is Decimal:
            if value.is_finite():
                return head + str(value) + "</v></c>"
        elif cls is int:
            return head + str(value) + "</v></c>"
        return any_cell(value, style if cls is float else 0)
    return number


def date_encoder(style: int) -> Encoder:
    head = f' s="{style}"><v>'

    def date(value) -> str:
        if value is None:
            return _EMPTY
        if value.__class__ is dt.date:
            serial = value.toordinal() - _EXCEL_EPOCH
            return head + str(serial + 1 if serial > 59 else serial) + "</v></c>"
        if isinstance(value, dt.datetime):
            return head + repr(excel_serial(value)) + "</v></c>"
        return any_cell(value)
    return date


def boolean_encoder() -> Encoder:
    def boolean(value) -> str:
        if value is None:
            return _EMPTY
        if value is True:
            return ' t="b"><v>1</v></c>'
        if value is False:
            return ' t="b"><v>0</v></c>'
        return any_cell(value)
    return boolean


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def row_formatter(encoders: Sequence[Encoder]) -> Callable[[int, Sequence], str]:
    """(row number, values) -> the row's XML, in one format call: each cell's reference is in the
    template, its value comes from its column's encoder."""
    template = '<row r="{0}">' + "".join(f'<c r="{column_letter(i)}{{0}}"{{{i + 1}}}' for i in range(len(encoders))) + "</row>"
    fmt, call = template.format, operator.call

    def row(number: int, values: Sequence) -> str:
        return fmt(number, *map(call, encoders, values))
    return row
