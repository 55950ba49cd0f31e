"""The artifact index (control.artifacts): one row per published file of a run.

Rows are written in the transaction that completes the run, with the file's storage key, size,
sha256, the template's sensitivity and the retention date; retention marks them deleted when
it purges the run, and a legal hold (per run, by a platform admin or the tenant's admin, with a
reason, audited) keeps the run's files past their retention date until it is released.
Every function runs in the caller's transaction (services/artifacts.py commits).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from orchestration.access import audit, policy
from orchestration.db.warehouse import dict_rows


class HoldError(ValueError):
    """A hold or release that cannot apply (unknown run, nothing left to hold, no change)."""


def record_published(cur, *, record, template, store_kind: str, location: str,
                     keys: dict[str, str], files: list[dict[str, Any]], retention_days: int) -> None:
    """Insert the index rows of a run being completed (inside the caller's transaction);
    retention_until is the transaction's now() plus `retention_days`, as published_at is."""
    for entry in files:
        cur.execute(
            """
            insert into control.artifacts
                (run_id, tenant_id, template_key, template_version, variant, format, name, store, storage_key,
                 location, bytes, sha256, sensitivity, retention_until, sheets)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now() + make_interval(hours => 24 * %s), %s)
            """,
            (record.run_id, record.tenant_id, template.key, template.version, entry.get("variant", "internal"),
             entry["format"],
             entry["name"], store_kind, keys[entry["name"]], location, entry["bytes"], entry["sha256"],
             template.sensitivity, retention_days, entry.get("sheets")),
        )


def list_artifacts(conn, *, tenant_id: str | None = None, run_id: str | None = None,
                   include_deleted: bool = True, limit: int = 200) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(
            """
            select * from control.artifacts
             where (%(tenant)s::text is null or tenant_id = %(tenant)s)
               and (%(run)s::text is null or run_id = %(run)s)
               and (%(deleted)s or deleted_at is null)
             order by created_at desc, run_id, variant, format
             limit %(limit)s
            """,
            {"tenant": tenant_id, "run": run_id, "deleted": include_deleted, "limit": limit},
        )
        return dict_rows(cur)


def sheets_of(conn, run_id: str) -> list[str] | None:
    """The data sheets of a run's internal XLSX file, or None when it has none."""
    with conn.cursor() as cur:
        cur.execute("select sheets from control.artifacts where run_id = %s and format = 'xlsx' and variant = 'internal'",
                    (run_id,))
        row = cur.fetchone()
    return list(row[0]) if row and row[0] is not None else None


def held(conn, run_id: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("select bool_or(legal_hold) from control.artifacts where run_id = %s and deleted_at is null",
                    (run_id,))
        return bool(cur.fetchone()[0])


def retention_until(conn, run_id: str) -> dt.datetime | None:
    """When the run's live artifacts may go (the earliest retention date of its rows), or None."""
    with conn.cursor() as cur:
        cur.execute("select min(retention_until) from control.artifacts where run_id = %s and deleted_at is null",
                    (run_id,))
        return cur.fetchone()[0]


def mark_deleted(cur, run_id: str) -> list[dict[str, Any]]:
    """Mark a run's live rows deleted (inside the caller's transaction); returns them."""
    cur.execute("update control.artifacts set deleted_at = now() where run_id = %s and deleted_at is null "
                "returning variant, format, name, storage_key, bytes, sha256, sensitivity, retention_until",
                (run_id,))
    return dict_rows(cur)


def set_hold(conn, run_id: str, *, hold: bool, actor: str, reason: str) -> int:
    """Place (hold=True) or release a legal hold on every live artifact of a run. Allowed to a
    platform admin or the tenant admin of the run's tenant; audited either way. Returns the rows changed."""
    action = "artifact.hold" if hold else "artifact.release"
    if not reason or not reason.strip():
        raise HoldError("a reason is required")
    with conn.cursor() as cur:
        cur.execute("select tenant_id, count(*) filter (where deleted_at is null), count(*) filter (where legal_hold) "
                    "from control.artifacts where run_id = %s group by tenant_id", (run_id,))
        row = cur.fetchone()
    if row is None:
        raise HoldError(f"run {run_id} has no artifacts in the index")
    tenant_id, live, on_hold = row
    policy.authorize(conn, actor, "legal_hold", target=run_id, tenant_id=tenant_id, correlation_id=run_id)
    if live == 0:
        raise HoldError(f"the artifacts of run {run_id} were already deleted")
    if hold and on_hold == live:
        raise HoldError(f"run {run_id} is already on legal hold")
    if not hold and on_hold == 0:
        raise HoldError(f"run {run_id} is not on legal hold")
    with conn.cursor() as cur:
        if hold:
            cur.execute("""update control.artifacts set legal_hold = true, legal_hold_reason = %s, legal_hold_by = %s,
                                  legal_hold_at = now()
                            where run_id = %s and deleted_at is null""", (reason, actor, run_id))
        else:
            cur.execute("""update control.artifacts set legal_hold = false, legal_hold_reason = null,
                                  legal_hold_by = null, legal_hold_at = null
                            where run_id = %s and deleted_at is null""", (run_id,))
        changed = cur.rowcount
        audit.record(conn, actor=actor, action=action, target=run_id, outcome="succeeded", tenant_id=tenant_id,
                     correlation_id=run_id, details={"reason": reason, "artifacts": changed})
    return changed
