"""RFC 9457 problem details: every error the API returns, validation errors included.

Domain refusals map by family (orchestration.errors): NotFound 404, Denied 403 (the services
turn "another tenant's object" into NotFound, so ids reveal nothing), Invalid 422, Conflict 409.
A bug is a 500 with no detail: the traceback goes to the server log, never to the caller.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestration.access.policy import AccessDenied
from orchestration.access.tokens import Unauthenticated
from orchestration.errors import Conflict, Denied, Invalid, NotFound, ServiceError, StaleVersion

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://nexus-reports.example/problems/"
log = logging.getLogger("orchestration.api")

_STATUS_BY_FAMILY: tuple[tuple[type[Exception], int], ...] = (
    (StaleVersion, 412),  # before Conflict, its family
    (NotFound, 404),
    (Denied, 403),
    (AccessDenied, 403),
    (Conflict, 409),  # before Invalid: a state conflict of a domain whose errors are Invalid (schedules) is a 409
    (Invalid, 422),
)


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is answered."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


_PROBLEM_CONTENT = {MEDIA_TYPE: {"schema": Problem.model_json_schema()}}


def _documented(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description, "content": _PROBLEM_CONTENT}


# Declared on every route, so the OpenAPI document tells clients (and schemathesis) what errors look like.
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _documented("no valid API token"),
    403: _documented("the principal may not do this"),
    404: _documented("no such object, or one of another tenant"),
    409: _documented("the object's state does not allow this"),
    412: _documented("If-Match names a stale version"),
    422: _documented("the request is not valid; `errors` lists field problems"),
}


def problem(request: Request, status: int, detail: str, *, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None) -> JSONResponse:
    title = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": TYPE_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def status_of(exc: Exception) -> int:
    for family, status in _STATUS_BY_FAMILY:
        if isinstance(exc, family):
            return status
    return 500


def install(app: FastAPI) -> None:
    @app.exception_handler(Unauthenticated)
    async def _unauthenticated(request: Request, exc: Unauthenticated):
        request.state.denial = str(exc)  # for the audit row; the caller learns nothing more
        return problem(request, 401, "a valid API token is required (Authorization: Bearer <token>)",
                       headers={"WWW-Authenticate": 'Bearer realm="nexus-reports"'})

    @app.exception_handler(ServiceError)
    @app.exception_handler(AccessDenied)
    async def _refused(request: Request, exc: Exception):
        request.state.denial = str(exc)
        return problem(request, status_of(exc), str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [
            {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"), "message": err.get("msg", ""),
             "type": err.get("type", "")}
            for err in exc.errors()
        ]
        request.state.denial = "invalid request"
        return problem(request, 422, f"the request is not valid: {len(errors)} problem(s)", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return problem(request, exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(request, 500, "internal error; the request id identifies it in the server log")
