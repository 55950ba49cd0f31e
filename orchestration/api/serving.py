"""The API under uvicorn on a loopback port, in a background thread of this process: for the
API benchmark and the tests (the same server `nexus-reports serve` runs, without a terminal)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(app, *, name: str = "app", access_log: bool = False, log_level: str = "warning",
            configured: Callable[[], None] | None = None) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL (http://127.0.0.1:<port>).

    `configured` runs after uvicorn has (re)configured its loggers, before it serves: the place
    to attach a handler to them."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, access_log=access_log, log_level=log_level,
                            lifespan="off")
    if configured is not None:
        configured()
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name=f"uvicorn-{name}")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start on port {port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
