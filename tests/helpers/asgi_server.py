"""A real ASGI app under uvicorn on a loopback port, in a background thread of the test process."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import uvicorn

from tests.servers import free_port


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
        assert thread.is_alive() and time.monotonic() < deadline, f"{name} did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
