"""The only SQL on control.report_definitions and their versions. Runs in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import secrets

from orchestration.catalog.definitions import Definition, DefinitionSpec, DefinitionVersion, SecurityContext

_DEF = ("definition_id, tenant_id, status, current_version, active_version, created_by, created_at, updated_at,"
        " activated_at, deprecated_at, archived_at, reason_code, reason_text, invalid_since, invalid_reason, invalid_fields")
_VER = "definition_id, version, spec, validation_hash, security_context, created_by, created_at, activated_by, activated_at"
_UPDATABLE = frozenset({"status", "current_version", "active_version", "activated_at", "deprecated_at", "archived_at",
                        "reason_code", "reason_text", "invalid_since", "invalid_reason", "invalid_fields"})
INVALID = "invalid"  # a list filter beside the lifecycle statuses: definitions marked invalid


def _definition(row) -> Definition:
    return Definition.model_validate(dict(zip(_DEF.replace(" ", "").split(","), row, strict=True)))


def _version(row) -> DefinitionVersion:
    return DefinitionVersion.model_validate(dict(zip(_VER.replace(" ", "").split(","), row, strict=True)))


def create(conn, *, tenant_id: str, created_by: str, now: dt.datetime) -> Definition:
    with conn.cursor() as cur:
        cur.execute(
            f"""insert into control.report_definitions (definition_id, tenant_id, created_by, created_at, updated_at)
                values (%s, %s, %s, %s, %s) returning {_DEF}""",
            ("rdef_" + secrets.token_hex(8), tenant_id, created_by, now, now),
        )
        return _definition(cur.fetchone())


def add_version(conn, definition_id: str, version: int, spec: DefinitionSpec, *, validation_hash: str,
                context: SecurityContext, created_by: str, now: dt.datetime) -> DefinitionVersion:
    with conn.cursor() as cur:
        cur.execute(
            f"""insert into control.report_definition_versions
                   (definition_id, version, spec, validation_hash, security_context, created_by, created_at)
                values (%s, %s, %s, %s, %s, %s, %s) returning {_VER}""",
            (definition_id, version, spec.model_dump_json(), validation_hash, context.model_dump_json(), created_by, now),
        )
        return _version(cur.fetchone())


def get(conn, definition_id: str, *, for_update: bool = False) -> Definition | None:
    with conn.cursor() as cur:
        cur.execute(f"select {_DEF} from control.report_definitions where definition_id = %s"
                    + (" for update" if for_update else ""), (definition_id,))
        row = cur.fetchone()
    return _definition(row) if row else None


def get_version(conn, definition_id: str, version: int) -> DefinitionVersion:
    with conn.cursor() as cur:
        cur.execute(f"select {_VER} from control.report_definition_versions where definition_id = %s and version = %s",
                    (definition_id, version))
        return _version(cur.fetchone())


def list_for(conn, tenant_ids: list[str] | None, *, statuses: list[str], after: str | None, limit: int,
             invalid_only: bool = False) -> list[Definition]:
    with conn.cursor() as cur:
        cur.execute(
            f"""select {_DEF} from control.report_definitions
                where (%(tenants)s::text[] is null or tenant_id = any(%(tenants)s::text[]))
                  and status = any(%(statuses)s) and (%(after)s::text is null or definition_id > %(after)s)
                  and (not %(invalid_only)s or invalid_since is not null)
                order by definition_id limit %(limit)s""",
            {"tenants": tenant_ids, "statuses": statuses, "after": after, "limit": limit, "invalid_only": invalid_only},
        )
        return [_definition(r) for r in cur.fetchall()]


def update(conn, definition_id: str, changes: dict[str, object], *, now: dt.datetime) -> Definition:
    unknown = set(changes) - _UPDATABLE
    if unknown:  # column names come from the service, never from a request
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assigns = "".join(f"{column} = %({column})s, " for column in changes)
    with conn.cursor() as cur:
        cur.execute(
            f"update control.report_definitions set {assigns}updated_at = %(now)s where definition_id = %(id)s returning {_DEF}",
            {**changes, "now": now, "id": definition_id},
        )
        return _definition(cur.fetchone())


def mark_version_active(conn, definition_id: str, version: int, *, by: str, now: dt.datetime) -> None:
    with conn.cursor() as cur:
        cur.execute("update control.report_definition_versions set activated_by = %s, activated_at = %s"
                    " where definition_id = %s and version = %s", (by, now, definition_id, version))



def ids_using(conn, *, entity_ids: list[str] | None = None, created_by: str | None = None) -> list[str]:
    """Definitions not archived whose current or active version reads one of the entities, or
    that the principal saved: the ones a registry or policy change may invalidate."""
    with conn.cursor() as cur:
        cur.execute(
            """select distinct d.definition_id from control.report_definitions d
                 join control.report_definition_versions v on v.definition_id = d.definition_id
                                                          and v.version in (d.current_version, d.active_version)
                where d.status <> 'archived'
                  and (%(entities)s::text[] is null or v.spec->'entity_ids' ?| %(entities)s::text[])
                  and (%(owner)s::text is null or d.created_by = %(owner)s)
                order by 1""",
            {"entities": entity_ids, "owner": created_by},
        )
        return [row[0] for row in cur.fetchall()]
