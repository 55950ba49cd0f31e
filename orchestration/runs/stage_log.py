"""What a run's steps say about themselves, for whoever is listening: Dagster's run log.

The steps emit one line per stage (freshness, snapshot with row counts, Gate B with passed and
evaluated, each rendered file with its size, publish with the location); an adapter that shows a
log (the Dagster op and assets) listens for the duration of the steps. Nobody listening: nothing
happens, so the worker and the tests need nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

_listener: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("stage_log", default=None)


@contextlib.contextmanager
def listening(log: Callable[[str], None]) -> Iterator[None]:
    token = _listener.set(log)
    try:
        yield
    finally:
        _listener.reset(token)


def emit(message: str) -> None:
    log = _listener.get()
    if log is not None:
        log(message)


def size(n: int) -> str:
    """Bytes as people read them: 812 B, 45.1 kB, 3.2 MB."""
    for unit, scale in (("MB", 1_000_000), ("kB", 1_000)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
