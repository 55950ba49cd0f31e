"""The one table renderer: header row, aligned columns, one UTC timestamp format."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from orchestration.cli.tables import Column, render, when
from tests.helpers.cli import invoke

STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ")


def test_columns_align_under_their_header():
    lines = render([Column("id", right=True), Column("name"), Column("note")],
                   [(7, "acme", "first"), (1234, "globex-long", None)])
    assert lines == ["  id  name         note",
                     "   7  acme         first",
                     "1234  globex-long  -"]


def test_one_timestamp_format_in_utc():
    berlin = dt.datetime(2026, 7, 6, 6, 0, 5, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))
    assert when(berlin) == "2026-07-06 04:00:05Z"
    assert when(dt.datetime(2026, 7, 6, 4, 0, 5)) == "2026-07-06 04:00:05Z"  # naive: already UTC
    assert when(None) == "-"


def test_list_commands_print_a_header_and_the_one_time_format(built):
    tail = invoke("audit", "tail", "-n", "5")
    assert tail.exit_code == 0, tail.output
    header, *rows = tail.stdout.splitlines()
    assert header.split() == ["seq", "at", "actor", "tenant", "action", "outcome", "target"]
    assert len(rows) == 5 and all(STAMP.search(r) for r in rows)
    for args, first in ((["templates", "list"], "template"), (["principals", "list"], "principal"),
                        (["schedules", "list"], "id"), (["runs", "list"], "run")):
        out = invoke(*args)
        assert out.exit_code == 0, out.output
        assert out.stdout.split()[0] in (first, "no"), out.stdout
