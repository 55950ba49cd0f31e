"""The API's building blocks for a versioned resource (report definitions, chart definitions,
export pipelines): the ETag of the version shown, the If-Match header a change is based on, the
`Link` to the next page, and the change and lifecycle endpoints themselves:

    PATCH /{id}            a new version (If-Match: the ETag it is based on; 412 when stale)
    POST  /{id}/activate   the approver's step
    POST  /{id}/<verb>     deprecate, pause or archive, with a reason (governance.versioned.Retirement)

Each router adds them with its own path parameter name, models, summaries and service calls, so
paths, operation ids, schemas and answers are what they would be written out by hand.

No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations, which
name this module's closure variables (the resource's models).
"""

import inspect
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel

from orchestration.api.deps import Conn, CurrentPrincipal, RequestId
from orchestration.governance.versioned import Retirement

IfMatch = Annotated[str | None, Header(description="the ETag the change is based on")]


def tag(response: Response | None, etag: str) -> None:
    """The ETag of the object's newest version, on an answer that shows one object."""
    if response is not None:
        response.headers["ETag"] = etag


def next_link(request: Request, response: Response, cursor: str | None) -> None:
    if cursor:
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=cursor)}>; rel="next"'


def path_id(name: str) -> Any:
    """A dependency that reads the path parameter `name` (FastAPI takes a path parameter's name
    from the endpoint's signature, so the shared endpoints get it through this one)."""

    def read(**given: str) -> str:
        return given[name]

    read.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=str)])
    return Depends(read)


class StopRoute(NamedTuple):
    verb: str  # the path's last segment and the endpoint's name: deprecate, pause, archive
    status: str  # the status it moves to
    summary: str


DEPRECATE = StopRoute("deprecate", "deprecated", "Deprecate, with a reason")
ARCHIVE = StopRoute("archive", "archived", "Archive, with a reason (final)")
APPROVE = "Approve the newest version (a second person with the approver role)"


class Resource(NamedTuple):
    """One versioned resource as the API shows it."""

    router: APIRouter
    id_name: str  # the path parameter: report_definition_id, chart_id, pipeline_id
    public: Callable[[Any, Response], BaseModel]  # a service view as the response model, with its ETag
    response_model: type[BaseModel]

    def add_route(self, suffix: str | None, endpoint: Callable[..., Any], method: str, summary: str, name: str,
                  status_code: int = 200) -> None:
        """A route at /{id}<suffix>, or at the collection itself when suffix is None."""
        path = "" if suffix is None else f"/{{{self.id_name}}}{suffix}"
        self.router.add_api_route(path, endpoint, methods=[method], name=name, status_code=status_code,
                                  response_model=self.response_model, summary=summary)


def add_create_route(resource: Resource, body_model: type[BaseModel], create: Callable[..., Any], *, summary: str,
                     name: str) -> None:
    """POST the collection: `create(conn, caller, body, correlation_id=...)` saves draft v1 (201, Location)."""

    def endpoint(body: body_model, response: Response, conn: Conn, caller: CurrentPrincipal, rid: RequestId) -> Any:
        created = resource.public(create(conn, caller, body, correlation_id=rid), response)
        response.headers["Location"] = f"{resource.router.prefix}/{getattr(created, resource.id_name)}"
        return created

    resource.add_route(None, endpoint, "POST", summary, name, status_code=201)


def add_get_route(resource: Resource, get: Callable[..., Any], *, summary: str, name: str) -> None:
    """GET /{id}: `get(conn, caller, id, version)`, the newest version unless ?version= names one."""
    ObjectId = Annotated[str, path_id(resource.id_name)]

    def endpoint(object_id: ObjectId, response: Response, conn: Conn, caller: CurrentPrincipal,
                 version: Annotated[int | None, Query(ge=1)] = None) -> Any:
        return resource.public(get(conn, caller, object_id, version), response)

    resource.add_route("", endpoint, "GET", summary, name)


def add_update_route(resource: Resource, body_model: type[BaseModel], update: Callable[..., Any], *,
                     name: str) -> None:
    """PATCH /{id}: `update(conn, caller, id, body, if_match=..., correlation_id=...)` makes a new version."""
    ObjectId = Annotated[str, path_id(resource.id_name)]

    def endpoint(object_id: ObjectId, body: body_model, response: Response, conn: Conn, caller: CurrentPrincipal,
                 rid: RequestId, if_match: IfMatch = None) -> Any:
        return resource.public(update(conn, caller, object_id, body, if_match=if_match, correlation_id=rid), response)

    resource.add_route("", endpoint, "PATCH", "Change it: a new version", name)


def add_lifecycle_routes(resource: Resource, *, activate: Callable[..., Any], activate_summary: str,
                         stop: Callable[..., Any], stops: tuple[StopRoute, ...]) -> None:
    """POST /{id}/activate (`activate(conn, caller, id, correlation_id=...)`) and one POST per stop
    (`stop(conn, caller, id, status, reason, correlation_id=...)`)."""
    ObjectId = Annotated[str, path_id(resource.id_name)]

    def activate_endpoint(object_id: ObjectId, response: Response, conn: Conn, caller: CurrentPrincipal,
                          rid: RequestId) -> Any:
        return resource.public(activate(conn, caller, object_id, correlation_id=rid), response)

    resource.add_route("/activate", activate_endpoint, "POST", activate_summary, "activate")
    for route in stops:
        resource.add_route(f"/{route.verb}", _stop_endpoint(resource, ObjectId, stop, route), "POST", route.summary,
                           route.verb)


def _stop_endpoint(resource: Resource, ObjectId: Any, stop: Callable[..., Any], route: StopRoute) -> Callable[..., Any]:
    def endpoint(object_id: ObjectId, body: Retirement, response: Response, conn: Conn, caller: CurrentPrincipal,
                 rid: RequestId) -> Any:
        return resource.public(stop(conn, caller, object_id, route.status, body, correlation_id=rid), response)

    return endpoint
