"""The link service: a small Starlette app that serves downloads through `links.resolve`.

Thin on purpose: every decision is in orchestration/links/service.py. `GET /links/<token>` streams the
file or answers 404 / 403 / 410 with a generic message that never says whether the artifact
exists. The clock (`app.state.clock`) and the connection factory (`app.state.connect`) are
injectable, so tests can move time. Run it with `nexus-reports serve`.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from orchestration.db import warehouse
from orchestration.links import service as links

# No caching anywhere, no token leaking through a Referer, no content sniffing.
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _content_disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f'attachment; filename="{ascii_name}"; filename*=UTF-8\'\'{urllib.parse.quote(filename)}'


def download(request: Request) -> Response:
    """A plain (sync) endpoint: Starlette runs it in its thread pool, so database work does not
    block the event loop; the file is streamed after the connection is closed."""
    if request.method != "GET":  # Starlette adds HEAD to GET routes; a probe is not a download
        return PlainTextResponse("Method Not Allowed", status_code=405, headers={**PRIVATE_HEADERS, "Allow": "GET"})
    token = request.path_params["token"]
    now = request.app.state.clock()
    remote = request.client.host if request.client else None
    conn = request.app.state.connect()
    try:
        grant = links.resolve(conn, token, now=now, remote_addr=remote)
    except links.LinkDenied as denied:
        return PlainTextResponse(denied.public_message, status_code=denied.status, headers=PRIVATE_HEADERS)
    finally:
        conn.close()
    # TODO(artifact store): when open_artifact answers with a presigned URL (valid <= 60 s), return
    # RedirectResponse(url, status_code=303, headers=PRIVATE_HEADERS) here instead of streaming.
    headers = {
        **PRIVATE_HEADERS,
        "Content-Disposition": _content_disposition(grant.filename),
        "Content-Length": str(grant.size),
    }
    return StreamingResponse(grant.chunks, media_type=grant.content_type, headers=headers)


def health(request: Request) -> Response:
    return PlainTextResponse("ok", headers=PRIVATE_HEADERS)


def create_app(*, clock: Callable[[], dt.datetime] | None = None,
               connect: Callable[[], object] | None = None) -> Starlette:
    app = Starlette(routes=[
        Route("/links/{token}", download, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
    ])
    app.state.clock = clock or links.utcnow
    app.state.connect = connect or warehouse.connect
    return app


def serve(host: str = "127.0.0.1", port: int = 8088) -> None:
    import uvicorn

    # No access log: the request line holds the token. Every request is an access event instead.
    uvicorn.run(create_app(), host=host, port=port, access_log=False, log_level="info")
