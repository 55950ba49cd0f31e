"""Retention: a completed run whose artifacts are past their retention date expires.

The retention of a run is its template's retention_days, capped by the template's sensitivity
(`SENSITIVITY_MAX_DAYS`, the one place the caps live); the date is fixed in the artifact index
when the run publishes. A run past it is purged through the artifact store it was published to
(local folder or S3: the manifest goes first, so no reader ever finds half of it), its index
rows are marked deleted and the run moves completed -> expired, with an audit row for the purge
and one for the expiry. A run with any artifact on legal hold is skipped and stays completed.
The sweep over every run is services/artifacts.sweep.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from orchestration.access import audit
from orchestration.artifacts import index as artifact_index
from orchestration.artifacts import which_store
from orchestration.artifacts.store import StorageError
from orchestration.governance import versions
from orchestration.runs import records
from orchestration.runs.run_record import RunRecord

ACTOR = "svc:retention"

# The longest any artifact of a sensitivity may be kept, whatever its template says (days).
SENSITIVITY_MAX_DAYS: dict[str, int | None] = {
    "internal": None,  # as the template says
    "confidential": 730,
    "restricted": 365,
}


def retention_days(template) -> int:
    """The days a template's artifacts are kept: its retention_days within its sensitivity's cap."""
    cap = SENSITIVITY_MAX_DAYS[template.sensitivity]
    return min(template.retention_days, cap) if cap else template.retention_days


@dataclass
class Sweep:
    expired: list[str] = field(default_factory=list)  # purged, now expired
    held: list[str] = field(default_factory=list)  # past retention but on legal hold: kept, still completed
    failed: dict[str, str] = field(default_factory=dict)  # run_id -> why the store could not purge it


def purge_if_due(conn, record: RunRecord, now: dt.datetime, into: Sweep) -> None:
    """Purge one completed run if it is past retention, in the caller's transaction (one per run:
    services/artifacts.sweep), and note the outcome in `into`. A store that cannot purge is
    audited at once (that row survives whatever the caller does next)."""
    run_id = record.run_id
    template = versions.template_of_run(conn, record)
    days = retention_days(template)
    # The date fixed at publish; runs published before the index existed: from published_at.
    until = artifact_index.retention_until(conn, run_id) or record.published_at + dt.timedelta(days=days)
    if until > now:
        return
    if artifact_index.held(conn, run_id):
        into.held.append(run_id)
        return
    location = record.artifact_location
    removed: list[str] = []
    store_kind = None
    try:
        if location:
            store, key = which_store.for_location(location)
            store_kind = store.kind
            removed = store.delete(key)
    except StorageError as exc:
        into.failed[run_id] = str(exc)
        audit.record_now(conn, actor=ACTOR, action="artifact.purged", target=location or run_id, outcome="failed",
                         tenant_id=record.tenant_id, correlation_id=run_id, details={"error": str(exc)})
        return
    with conn.cursor() as cur:
        rows = artifact_index.mark_deleted(cur, run_id)
        records.expire_run(cur, run_id)
    audit.record(conn, actor=ACTOR, action="artifact.purged", target=location or run_id, outcome="succeeded",
                 tenant_id=record.tenant_id, correlation_id=run_id,
                 details={"store": store_kind, "removed": removed,
                          "artifacts": [{k: r[k] for k in ("variant", "format", "storage_key", "sha256", "bytes")}
                                        for r in rows]})
    audit.record(conn, actor=ACTOR, action="run.expired", target=run_id, outcome="succeeded",
                 tenant_id=record.tenant_id, correlation_id=run_id,
                 details={"retention_days": days, "template_retention_days": template.retention_days,
                          "sensitivity": template.sensitivity, "retention_until": until.isoformat(),
                          "published_at": record.published_at.isoformat(), "removed": location})
    into.expired.append(run_id)
