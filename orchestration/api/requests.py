"""Correlation ids and the audit row of every API request.

`X-Request-ID` (or `X-Correlation-ID`) is taken from the caller when it is a plain token (letters, digits, `._-`, at
most 128), else generated; it is echoed on the response, put on `request.state` for the
routes (it becomes the run's correlation id, Dagster tag and manifest field) and written with
the request's principal, status and timing to the audit log once the response has started.
A pure ASGI middleware, so streamed downloads are not buffered.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid

import anyio
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestration.access import audit

HEADER = "X-Request-ID"
ALIAS = "X-Correlation-ID"  # the same id under the name some callers use; X-Request-ID wins when both come
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Requests not worth an audit row of their own: the link service records its own access events.
_UNAUDITED_PREFIXES = ("/links/", "/healthz", "/docs", "/openapi.json", "/redoc")


def request_id_from(value: str | None) -> str:
    return value if value and _SAFE_ID.fullmatch(value) else uuid.uuid4().hex


def _outcome(status: int) -> str:
    if status in (401, 403, 404):
        return "denied"
    return "succeeded" if status < 400 else "failed"


def route_of(scope: Scope) -> str:
    """The matched route's path template (`/reporting/runs/{run_id}`), never the raw path: ids
    and link tokens stay out of metric labels, and their number stays bounded."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def _observe(scope: Scope, status: int, seconds: float) -> None:
    metrics = getattr(scope["app"].state, "metrics", None)
    if metrics is not None and not scope.get("nexus_observed"):
        scope["nexus_observed"] = True  # once per request, also when the error handler answers after a raise
        metrics.observe(scope["method"], route_of(scope), status, seconds)


class RequestAudit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(HEADER.lower().encode()) or headers.get(ALIAS.lower().encode()) or b""
        request_id = request_id_from(given.decode("latin-1") or None)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["received_at"] = dt.datetime.now(dt.UTC)  # where the request stands in an audit trace
        started = time.perf_counter()
        audited = scope["path"].startswith(_UNAUDITED_PREFIXES)

        async def record(status: int) -> None:
            nonlocal audited
            if not audited:
                audited = True
                elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
                await anyio.to_thread.run_sync(self._record, scope, state, request_id, status, elapsed_ms)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                _observe(scope, message["status"], time.perf_counter() - started)
                # Audited before the caller sees the answer: a client that reads its response
                # can rely on the row being there.
                await record(message["status"])
                response_headers = MutableHeaders(scope=message)
                response_headers[HEADER] = request_id
                response_headers[ALIAS] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            _observe(scope, 500, time.perf_counter() - started)
            await record(500)  # the error handler outside answers 500; audited all the same
            raise

    @staticmethod
    def _record(scope: Scope, state: dict, request_id: str, status: int, elapsed_ms: float) -> None:
        connect = scope["app"].state.connect
        conn = connect()
        try:
            details = {"method": scope["method"], "path": scope["path"], "status": status, "ms": elapsed_ms,
                       "received_at": state["received_at"].isoformat()}
            if state.get("denial"):
                details["reason"] = state["denial"]
            audit.record_now(
                conn, actor=state.get("principal_id") or "(anonymous)", action="api.request",
                target=f"{scope['method']} {scope['path']}", outcome=_outcome(status),
                tenant_id=state.get("tenant_id"), correlation_id=request_id, details=details,
            )
        finally:
            conn.close()
