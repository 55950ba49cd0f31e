"""How a reader sees a value: one decimal rule per unit, long durations in hours or days, an em
dash for nothing, and labels instead of raw codes.

The data formats (CSV, JSON, XLSX) keep values as computed; the PDF and the key-figure cards
show them through these functions. A column's unit comes from its label's parenthesis, the
codebase's convention ("MTTR (min)", "Available (%)"), or else from its name's suffix.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal

from orchestration.exports.sections import Column

EMPTY = "\u2014"  # an em dash: the value is absent (a day without incidents has no attainment)
# Units the exports know, from a label's parenthesis or a name's suffix.
_LABEL_UNIT = re.compile(r"\s*\((%|min|ms|h|days)\)\s*$")
_NAME_UNITS = (("_pct", "%"), ("_minutes", "min"), ("_ms", "ms"), ("_hours", "h"), ("_days", "days"))
DURATION_UNITS = ("min",)
# Decimals shown per unit: counts and milliseconds whole, shares and rates to one decimal.
DECIMALS = {"%": 1, "ms": 0, "h": 0, "days": 0, "": 1}
HOURS_FROM_MINUTES = 120  # from 120 min a duration reads better in hours,
DAYS_FROM_MINUTES = 48 * 60  # from 48 h in days

# Codes of the product's vocabulary whose label is not their spelling; other codes are spelled out.
CODE_LABELS = {
    "ir": "Incident response", "edr": "EDR", "siem": "SIEM", "soc2": "SOC 2", "iso27001": "ISO 27001",
    "nist_csf": "NIST CSF", "pci_dss": "PCI DSS", "hipaa": "HIPAA", "gdpr": "GDPR",
}
CODE_CHARS = 40  # longer text is not a vocabulary code
_CODE = re.compile(r"[a-z]+(?:[_-][a-z]+)*\d*")  # words, perhaps a trailing number: never a hash or an id
_TRAILING_NUMBER = re.compile(r"([a-z])(\d+)$")


def column_unit(column: Column) -> str:
    if column.label and (m := _LABEL_UNIT.search(column.label)):
        return m.group(1)
    return next((unit for suffix, unit in _NAME_UNITS if column.name.endswith(suffix)), "")


def column_heading(column: Column) -> str:
    """A duration column's cells carry their own unit (min, h or days), so its heading drops it."""
    if column_unit(column) in DURATION_UNITS and column.label:
        return _LABEL_UNIT.sub("", column.label)
    return column.header


def is_code_column(column: Column) -> bool:
    """Text columns holding vocabulary codes (severity, status, team, kind, tactic); never an
    identifier or a free-text name or title, whose spelling is the value."""
    name = column.name
    return column.type == "text" and not name.endswith(("_id", "_name", "_title", "title", "name", "_hash"))


def code_label(value: str) -> str:
    """`in_progress` -> In progress, `tier2` -> Tier 2, `initial-access` -> Initial access."""
    if value in CODE_LABELS:
        return CODE_LABELS[value]
    if len(value) > CODE_CHARS or not _CODE.fullmatch(value):
        return value  # not a code: shown as written
    words = _TRAILING_NUMBER.sub(r"\1 \2", value).replace("_", " ").replace("-", " ")
    return words[:1].upper() + words[1:]


def duration(minutes: float) -> str:
    """3,875.7 min -> 2.7 days; 150 min -> 2.5 h; 42.5 min -> 42.5 min."""
    if abs(minutes) >= DAYS_FROM_MINUTES:
        return f"{number(minutes / 1440)} days"
    if abs(minutes) >= HOURS_FROM_MINUTES:
        return f"{number(minutes / 60)} h"
    return f"{number(float(minutes))} min"


def number(value: int | float | Decimal, unit: str = "", *, whole: bool = False) -> str:
    """A number by its unit's rule; `whole` (an integer column) never shows decimals."""
    if unit in DURATION_UNITS:
        return duration(float(value))
    if whole or isinstance(value, int):
        return f"{int(value):,}"
    places = DECIMALS.get(unit, 1)
    # Half up, as a reader rounds (97.25 % is 97.3 %), not the binary float's half-even.
    exact = Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{exact:,.{places}f}"


def key_figure_parts(value: int | float | None, unit: str) -> tuple[str, str]:
    """(number, unit) as a key-figure card shows them: a duration brings its own unit."""
    if value is None:
        return EMPTY, ""
    if unit in DURATION_UNITS:
        shown, _, shown_unit = duration(float(value)).partition(" ")
        return shown, shown_unit
    return number(value, unit), unit


def cell(value, column: Column) -> str:
    """A table cell of the PDF."""
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float, Decimal)):
        return number(value, column_unit(column), whole=column.type in ("integer", "bigint"))
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    return code_label(text) if is_code_column(column) else text


def plain(value) -> int | float | None:
    """A computed value as a JSON/XLSX number: integral values as int, others as float."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (int, float)):
        return value
    return None
