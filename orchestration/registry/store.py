"""The only SQL on control.registry_entities. Functions run in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

from orchestration.registry.entities import Entity, EntityCreate

_COLUMNS = (
    "entity_id, tenant_id, entity_name, data_source, allowed_fields, joins, classification, vertical_scope, geo_scope,"
    " status, version, created_by, created_at, updated_at, activated_at, deprecated_at, archived_at, reason_code, reason_text"
)


_UPDATABLE = frozenset({"allowed_fields", "joins", "classification", "status", "activated_at", "deprecated_at",
                         "archived_at", "reason_code", "reason_text"})


def _entity(row) -> Entity:
    return Entity.model_validate(dict(zip(_COLUMNS.replace(" ", "").split(","), row, strict=True)))


def _dump(items) -> str:
    return json.dumps([item.model_dump(mode="json") for item in items])


def insert(conn, spec: EntityCreate, *, created_by: str, now: dt.datetime) -> Entity:
    with conn.cursor() as cur:
        cur.execute(
            f"""insert into control.registry_entities
                   (entity_id, tenant_id, entity_name, data_source, allowed_fields, joins, classification,
                    vertical_scope, geo_scope, created_by, created_at, updated_at)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) returning {_COLUMNS}""",
            ("ent_" + secrets.token_hex(8), spec.tenant_id, spec.entity_name, json.dumps(spec.data_source.model_dump()),
             _dump(spec.allowed_fields), _dump(spec.joins), spec.classification, list(spec.vertical_scope),
             list(spec.geo_scope), created_by, now, now),
        )
        return _entity(cur.fetchone())


def get(conn, entity_id: str, *, for_update: bool = False) -> Entity | None:
    with conn.cursor() as cur:
        cur.execute(f"select {_COLUMNS} from control.registry_entities where entity_id = %s"
                    + (" for update" if for_update else ""), (entity_id,))
        row = cur.fetchone()
    return _entity(row) if row else None


def live_by_name(conn, entity_name: str, tenant_ids: list[str] | None) -> Entity | None:
    """The live (not archived) entry of that name among the system ones and these tenants' own."""
    with conn.cursor() as cur:
        cur.execute(
            f"""select {_COLUMNS} from control.registry_entities
                where entity_name = %s and status <> 'archived'
                  and (tenant_id is null or %s::text[] is null or tenant_id = any(%s::text[]))
                order by tenant_id nulls last limit 1""",
            (entity_name, tenant_ids, tenant_ids),
        )
        row = cur.fetchone()
    return _entity(row) if row else None


def list_visible(conn, *, tenant_ids: list[str] | None, statuses: list[str], vertical: str | None,
                 after: str | None, limit: int) -> list[Entity]:
    """Entries of the system and of these tenants (every tenant when None), ordered by id, one page."""
    with conn.cursor() as cur:
        cur.execute(
            f"""select {_COLUMNS} from control.registry_entities
                where (tenant_id is null or %(tenants)s::text[] is null or tenant_id = any(%(tenants)s::text[]))
                  and status = any(%(statuses)s)
                  and (%(vertical)s::text is null or vertical_scope = '{{}}' or %(vertical)s = any(vertical_scope))
                  and (%(after)s::text is null or entity_id > %(after)s)
                order by entity_id limit %(limit)s""",
            {"tenants": tenant_ids, "statuses": statuses, "vertical": vertical, "after": after, "limit": limit},
        )
        return [_entity(r) for r in cur.fetchall()]


def update(conn, entity_id: str, changes: dict[str, Any], *, now: dt.datetime) -> Entity:
    """Apply column changes (values already JSON-ready), bump the version."""
    unknown = set(changes) - _UPDATABLE
    if unknown:  # column names come from the service, never from a request; keep it that way
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assigns = ", ".join(f"{column} = %({column})s" for column in changes)
    with conn.cursor() as cur:
        cur.execute(
            f"""update control.registry_entities set {assigns}{', ' if assigns else ''}
                   version = version + 1, updated_at = %(now)s
                where entity_id = %(entity_id)s returning {_COLUMNS}""",
            {**changes, "now": now, "entity_id": entity_id},
        )
        return _entity(cur.fetchone())
