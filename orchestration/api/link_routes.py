"""The link service: a small Starlette app that serves downloads through `services.links.resolve`.

Thin on purpose (an adapter, beside the API routers): every decision is in orchestration/links/service.py, reached through
orchestration/services/links.py. `GET /links/<token>` streams the
file or answers 404 / 403 / 410 with a generic message that never says whether the artifact
exists. Any other method on a token (HEAD, POST, PUT, DELETE, PATCH, OPTIONS, ...) is recorded as
an access event and answered 405. The clock (`app.state.clock`) and the connection factory
(`app.state.connect`) are injectable, so tests can move time. Run it with `nexus-reports serve`.

A token is a bearer credential, so it must not leak: every response (ours, and Starlette's own
404s) says `Referrer-Policy: no-referrer` and `Cache-Control: no-store`, only the token in the
path is ever read (never a Referer), and the access log shows `/links/<redacted>`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import urllib.parse
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from orchestration.db import warehouse
from orchestration.links import service as links
from orchestration.services import links as link_service

# No caching anywhere, no token leaking through a Referer, no content sniffing.
PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


ACCESS_LOGGER = "uvicorn.access"
_TOKEN_IN_PATH = re.compile(r"(/links/)[^?#\s\"]+")


class RedactLinkTokens(logging.Filter):
    """Replaces the token of every /links/<token> in a log record (message and arguments) by
    <redacted>; the record keeps its shape (uvicorn's access formatter unpacks its args)."""

    @staticmethod
    def _redact(value):
        return _TOKEN_IN_PATH.sub(r"\1<redacted>", value) if isinstance(value, str) else value

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._redact(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._redact(v) for k, v in record.args.items()}
        return True


def install_log_redaction() -> None:
    """Attach the filter to uvicorn's access logger once (a logger filter survives uvicorn's
    dictConfig, which replaces handlers, not filters)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactLinkTokens) for f in logger.filters):
        logger.addFilter(RedactLinkTokens())


class PrivateHeaders:
    """ASGI middleware: PRIVATE_HEADERS on every response, including the router's own 404s."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_private(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in PRIVATE_HEADERS.items()
                         if k.lower().encode() not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_private)


def _content_disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f'attachment; filename="{ascii_name}"; filename*=UTF-8\'\'{urllib.parse.quote(filename)}'


def download(request: Request) -> Response:
    """A plain (sync) endpoint: Starlette runs it in its thread pool, so database work does not
    block the event loop; the file is streamed after the connection is closed. Only the path's
    token counts: a Referer (or any other header) carrying a token is never read."""
    token = request.path_params["token"]
    now = request.app.state.clock()
    remote = request.client.host if request.client else None
    conn = request.app.state.connect()
    try:
        if request.method != "GET":  # a probe or a write is not a download, but it is an access event
            denied = link_service.refuse_method(conn, token, request.method, now=now, remote_addr=remote)
            return PlainTextResponse(denied.public_message, status_code=405, headers={**PRIVATE_HEADERS, "Allow": "GET"})
        grant = link_service.resolve(conn, token, now=now, remote_addr=remote)
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


# Every method reaches `download`, so each is recorded; `{token:path}` also takes /links/a/b,
# which is then an unknown token (recorded) rather than a silent router 404.
LINK_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]


def create_app(*, clock: Callable[[], dt.datetime] | None = None,
               connect: Callable[[], object] | None = None) -> Starlette:
    install_log_redaction()
    app = Starlette(routes=[
        Route("/links/{token:path}", download, methods=LINK_METHODS),
        Route("/healthz", health, methods=["GET"]),
    ], middleware=[Middleware(PrivateHeaders)])
    app.state.clock = clock or links.utcnow
    app.state.connect = connect or warehouse.connect
    return app


def serve(host: str = "127.0.0.1", port: int = 8088) -> None:
    import uvicorn

    # The access log is on: RedactLinkTokens (installed by create_app) keeps tokens out of it.
    uvicorn.run(create_app(), host=host, port=port, access_log=True, log_level="info")
