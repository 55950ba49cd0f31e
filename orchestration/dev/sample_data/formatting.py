"""CSV fields and timestamps as text, without datetime objects in the hot loops."""

from __future__ import annotations

import datetime as dt
import unicodedata
from functools import cache


@cache
def hms_table() -> list[str]:
    """'HH:MM:SS+00' for every second of a day."""
    return [f"{h:02d}:{m:02d}:{s:02d}+00" for h in range(24) for m in range(60) for s in range(60)]


@cache
def day_prefix(day_number: int) -> str:
    """'YYYY-MM-DD ' of a day counted from 1970-01-01."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day_number)).isoformat() + " "


def timestamp(epoch: int) -> str:
    """Epoch seconds -> PostgreSQL timestamptz text in UTC."""
    return day_prefix(epoch // 86400) + hms_table()[epoch % 86400]


def epoch_of(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * 86400


def csv_quote(text: str) -> str:
    """A CSV field that COPY reads back byte-exact (always quoted: never NULL, never a marker)."""
    return '"' + text.replace('"', '""') + '"'



def email_ascii(text: str) -> str:
    """'zoë.müller' -> 'zoe.muller', for email addresses."""
    text = unicodedata.normalize("NFKD", text.translate(_NOT_DECOMPOSABLE))
    return "".join(c for c in text if c.isascii() and (c.isalnum() or c in ".-"))


_NOT_DECOMPOSABLE = str.maketrans({"ø": "o", "ł": "l", "ß": "ss", "æ": "ae"})
