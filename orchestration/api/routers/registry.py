"""/reporting/registry/entities: the reportable entity registry (restricted changes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import BaseModel

from orchestration.api.deps import Conn, CurrentPrincipal, RequestId
from orchestration.api.problems import RESPONSES
from orchestration.governance.versioned import Retirement, Status
from orchestration.registry.entities import Entity, EntityCreate, EntityUpdate
from orchestration.services import registry as service

router = APIRouter(prefix="/reporting/registry/entities", tags=["registry"], responses=RESPONSES)


class EntityPage(BaseModel):
    items: list[Entity]
    next: str | None = None


def _with_etag(response: Response, entity: Entity) -> Entity:
    response.headers["ETag"] = entity.etag
    return entity


@router.get("", response_model=EntityPage, summary="Entities the caller may report on")
def list_entities(
    request: Request, response: Response, conn: Conn, caller: CurrentPrincipal,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    vertical_id: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=service.PAGE_MAX)] = 50,
) -> EntityPage:
    page = service.list_entities(conn, caller, status=status_, vertical=vertical_id, cursor=cursor, limit=limit)
    if page.next_cursor:
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=page.next_cursor)}>; rel="next"'
    return EntityPage(items=page.items, next=page.next_cursor)


@router.post("", response_model=Entity, status_code=status.HTTP_201_CREATED, summary="Register an entity (draft)")
def create_entity(body: EntityCreate, response: Response, conn: Conn, caller: CurrentPrincipal, rid: RequestId) -> Entity:
    entity = service.create_entity(conn, caller, body, correlation_id=rid)
    response.headers["Location"] = f"{router.prefix}/{entity.entity_id}"
    return _with_etag(response, entity)


@router.get("/{entity_id}", response_model=Entity, summary="One entity")
def get_entity(entity_id: str, response: Response, conn: Conn, caller: CurrentPrincipal) -> Entity:
    return _with_etag(response, service.get_entity(conn, caller, entity_id))


@router.patch("/{entity_id}", response_model=Entity, summary="Change fields, joins or classification (new version)")
def update_entity(
    entity_id: str, body: EntityUpdate, response: Response, conn: Conn, caller: CurrentPrincipal, rid: RequestId,
    if_match: Annotated[str | None, Header(description="the ETag the change is based on; 412 when stale")] = None,
) -> Entity:
    return _with_etag(response, service.update_entity(conn, caller, entity_id, body, if_match=if_match, correlation_id=rid))


@router.post("/{entity_id}/activate", response_model=Entity, summary="Activate: the builder may use it")
def activate(entity_id: str, response: Response, conn: Conn, caller: CurrentPrincipal, rid: RequestId) -> Entity:
    return _with_etag(response, service.change_status(conn, caller, entity_id, "active", correlation_id=rid))


@router.post("/{entity_id}/deprecate", response_model=Entity, summary="Deprecate, with a reason")
def deprecate(entity_id: str, body: Retirement, response: Response, conn: Conn, caller: CurrentPrincipal,
              rid: RequestId) -> Entity:
    return _with_etag(response, service.change_status(conn, caller, entity_id, "deprecated", body, correlation_id=rid))


@router.post("/{entity_id}/archive", response_model=Entity, summary="Archive, with a reason (final)")
def archive(entity_id: str, body: Retirement, response: Response, conn: Conn, caller: CurrentPrincipal,
            rid: RequestId) -> Entity:
    return _with_etag(response, service.change_status(conn, caller, entity_id, "archived", body, correlation_id=rid))
