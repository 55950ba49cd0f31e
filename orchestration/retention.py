"""Retention: a completed run whose artifacts are past its template's retention_days expires.

Its published folder is deleted and the run moves completed -> expired (audited), so a link or
a reader never finds half of it: the folder goes first, with one rename out of sight, then the
record. Legal holds and the per-sensitivity rules of the artifact index come with the artifact
store; this is the lifecycle step they build on.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from . import audit, governance
from .warehouse import dict_rows


def expire(conn, now: dt.datetime | None = None, *, run_ids: list[str] | None = None) -> list[str]:
    """Expire every completed run past retention (or only those of `run_ids` that are);
    returns their run ids."""
    now = now or dt.datetime.now(dt.timezone.utc)
    with conn, conn.cursor() as cur:
        cur.execute("""select * from control.report_runs where state = 'completed' and published_at is not null
                         and (%s::text[] is null or run_id = any(%s))""", (run_ids, run_ids))
        candidates = dict_rows(cur)
    expired = []
    for record in candidates:
        template, _ = governance.load_version(conn, record["template_key"], record["template_version"],
                                              tenant_id=record["tenant_id"])
        until = record["published_at"] + dt.timedelta(days=template.retention_days)
        if until > now:
            continue
        location = Path(record["artifact_location"]) if record["artifact_location"] else None
        if location and location.exists():
            doomed = location.parent / f".expired-{location.name}"
            location.rename(doomed)  # gone from view at once; the bytes go next
            shutil.rmtree(doomed)
        with conn, conn.cursor() as cur:
            cur.execute("update control.report_runs set state = 'expired' where run_id = %s and state = 'completed'",
                        (record["run_id"],))
        audit.record_now(conn, actor="svc:retention", action="run.expired", target=record["run_id"],
                         outcome="succeeded", tenant_id=record["tenant_id"], correlation_id=record["run_id"],
                         details={"retention_days": template.retention_days, "published_at": record["published_at"].isoformat(),
                                  "removed": str(location) if location else None})
        expired.append(record["run_id"])
    return expired
