"""Streaming COPY: rows formatted as CSV in chunks of about 1 MB, fed to `COPY ... FROM STDIN`
by a reader whose read() pulls the next chunk, so no table ever sits in memory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

CHUNK_BYTES = 1 << 20       # COPY data is sent in chunks of about this size


class ChunkReader:
    """The file-like object handed to `copy_expert`: each read() returns the next chunk.

    psycopg2 accepts any length from read() and stops at b"" (chunks are never empty). A
    generator that fails is remembered, so `copy_rows` raises its error rather than psycopg2's
    "COPY from stdin failed".
    """

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self.failure: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            return next(self._chunks, b"")
        except BaseException as exc:
            self.failure = exc
            raise


def encode_chunks(lines: Iterable[str], limit: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Join lines into UTF-8 chunks of about `limit` bytes."""
    batch: list[str] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line)
        if size >= limit:
            yield "".join(batch).encode()
            batch, size = [], 0
    if batch:
        yield "".join(batch).encode()


def csv_chunks(rows: Iterable[tuple], limit: int = CHUNK_BYTES) -> Iterator[bytes]:
    """CSV of arbitrary rows (None -> NULL, booleans -> t/f) for the small tables."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow(["t" if v is True else "f" if v is False else v for v in row])
        if buffer.tell() >= limit:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def copy_rows(cur, table: str, columns: list[str], chunks: Iterator[bytes]) -> int:
    reader = ChunkReader(chunks)
    try:
        cur.copy_expert(f"copy raw.{table} ({', '.join(columns)}) from stdin with (format csv)", reader)
    except Exception as exc:
        # psycopg2 reports a failing read() as a cancelled COPY; raise what actually failed.
        if reader.failure is not None and reader.failure is not exc:
            raise reader.failure from exc
        raise
    return cur.rowcount
