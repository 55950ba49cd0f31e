"""The only SQL on control.chart_definitions and their versions. Runs in the caller's transaction."""

from __future__ import annotations

import datetime as dt
import secrets

from orchestration.catalog.chart_definitions import ChartDefinition, ChartSpec, ChartVersion

_CHART = ("chart_id, tenant_id, status, current_version, active_version, created_by, created_at, updated_at,"
          " activated_at, deprecated_at, archived_at, reason_code, reason_text")
_VER = ("chart_id, version, spec, source_kind, source_id, source_version, source_hash, created_by, created_at,"
        " activated_by, activated_at")
_UPDATABLE = frozenset({"status", "current_version", "active_version", "activated_at", "deprecated_at", "archived_at",
                        "reason_code", "reason_text"})


def _chart(row) -> ChartDefinition:
    return ChartDefinition.model_validate(dict(zip(_CHART.replace(" ", "").split(","), row, strict=True)))


def _version(row) -> ChartVersion:
    return ChartVersion.model_validate(dict(zip(_VER.replace(" ", "").split(","), row, strict=True)))


def create(conn, *, tenant_id: str, created_by: str, now: dt.datetime) -> ChartDefinition:
    with conn.cursor() as cur:
        cur.execute(
            f"""insert into control.chart_definitions (chart_id, tenant_id, created_by, created_at, updated_at)
                values (%s, %s, %s, %s, %s) returning {_CHART}""",
            ("chart_" + secrets.token_hex(8), tenant_id, created_by, now, now),
        )
        return _chart(cur.fetchone())


def add_version(conn, chart_id: str, version: int, spec: ChartSpec, *, source_version: int, source_hash: str | None,
                created_by: str, now: dt.datetime) -> ChartVersion:
    with conn.cursor() as cur:
        cur.execute(
            f"""insert into control.chart_definition_versions
                   (chart_id, version, spec, source_kind, source_id, source_version, source_hash, created_by, created_at)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s) returning {_VER}""",
            (chart_id, version, spec.model_dump_json(), spec.source_kind, spec.source_id, source_version, source_hash,
             created_by, now),
        )
        return _version(cur.fetchone())


def get(conn, chart_id: str, *, for_update: bool = False) -> ChartDefinition | None:
    with conn.cursor() as cur:
        cur.execute(f"select {_CHART} from control.chart_definitions where chart_id = %s"
                    + (" for update" if for_update else ""), (chart_id,))
        row = cur.fetchone()
    return _chart(row) if row else None


def get_version(conn, chart_id: str, version: int) -> ChartVersion:
    with conn.cursor() as cur:
        cur.execute(f"select {_VER} from control.chart_definition_versions where chart_id = %s and version = %s",
                    (chart_id, version))
        return _version(cur.fetchone())


def list_for(conn, tenant_ids: list[str] | None, *, statuses: list[str], after: str | None,
             limit: int) -> list[ChartDefinition]:
    with conn.cursor() as cur:
        cur.execute(
            f"""select {_CHART} from control.chart_definitions
                where (%(tenants)s::text[] is null or tenant_id = any(%(tenants)s::text[]))
                  and status = any(%(statuses)s) and (%(after)s::text is null or chart_id > %(after)s)
                order by chart_id limit %(limit)s""",
            {"tenants": tenant_ids, "statuses": statuses, "after": after, "limit": limit},
        )
        return [_chart(r) for r in cur.fetchall()]


def update(conn, chart_id: str, changes: dict[str, object], *, now: dt.datetime) -> ChartDefinition:
    unknown = set(changes) - _UPDATABLE
    if unknown:  # column names come from the service, never from a request
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assigns = "".join(f"{column} = %({column})s, " for column in changes)
    with conn.cursor() as cur:
        cur.execute(
            f"update control.chart_definitions set {assigns}updated_at = %(now)s where chart_id = %(id)s "
            f"returning {_CHART}",
            {**changes, "now": now, "id": chart_id},
        )
        return _chart(cur.fetchone())


def mark_version_active(conn, chart_id: str, version: int, *, by: str, now: dt.datetime) -> None:
    with conn.cursor() as cur:
        cur.execute("update control.chart_definition_versions set activated_by = %s, activated_at = %s"
                    " where chart_id = %s and version = %s", (by, now, chart_id, version))
