"""Where the evidence pack's inputs that are not in the database live: the test suite's JUnit XML
(`make test` writes it) and the latest output of each benchmark (`nexus-reports bench ...` saves it).

Both under `$NEXUS_HOME/evidence/`: `junit.xml`, and `bench/<benchmark>.txt` (the newest run of
each benchmark replaces the previous one; the first line says which command made it and when).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable
from pathlib import Path

from orchestration.settings import get_settings


def evidence_home() -> Path:
    return get_settings().home / "evidence"


def default_junit() -> Path:
    return evidence_home() / "junit.xml"


def bench_dir() -> Path:
    return evidence_home() / "bench"


class BenchRecorder:
    """An echo that also keeps every line, to save a benchmark's output when it ends."""

    def __init__(self, echo: Callable[[str], None]):
        self.echo = echo
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.echo(line)
        self.lines.append(line)

    def save(self, name: str, command: str, directory: Path | None = None, now: dt.datetime | None = None) -> Path:
        """Write `<directory>/<name>.txt` atomically (a reader never sees half of it)."""
        directory = directory or bench_dir()
        directory.mkdir(parents=True, exist_ok=True)
        now = now or dt.datetime.now(dt.UTC)
        header = f"# {command} at {now:%Y-%m-%d %H:%M:%S} UTC on {socket.gethostname()}"
        path = directory / f"{name}.txt"
        partial = path.with_suffix(".partial")
        partial.write_text("\n".join([header, *self.lines]) + "\n", encoding="utf-8")
        os.replace(partial, path)
        return path
