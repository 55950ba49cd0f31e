"""Streaming rows out of a snapshot table with a server-side cursor."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

from orchestration.exports.sections import SectionSnapshot

BATCH = 5000


def stream_rows(conn, section: SectionSnapshot, limit: int | None = None) -> Iterator[tuple]:
    """Rows in section order; at most BATCH rows are held in memory at a time."""
    with conn.cursor(name=f"export_{uuid.uuid4().hex[:12]}") as cur:
        cur.itersize = BATCH
        cur.execute(section.select_sql(limit=limit))
        yield from cur


def first_rows(conn, section: SectionSnapshot, n: int) -> list[tuple]:
    return list(itertools.islice(stream_rows(conn, section, limit=n), n))
