"""Control rows the KPI models are checked on, written once per session before the KPI models
are rebuilt over them (the `kpi_world` fixture in tests/conftest.py).

DAY is a past day no other test writes on (created_at and at are set here): two new tenants' runs
in every state and class, deliveries per channel, link denials, violations and a late schedule
tick, so the platform's numbers of DAY are exactly these rows. Each seeded tenant also gets one
run on SEEDED_DAY, so every tenant-scoped KPI model has rows of every tenant for the isolation
tests (tests/runs/test_isolation.py) to attack.
"""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace

import pytest

from orchestration.access import audit
from orchestration.db import warehouse
from orchestration.metrics import dbt_manifest
from tests.helpers.principals import upsert_principal

DAY = dt.date(2025, 3, 14)
AT = dt.datetime(2025, 3, 14, 9, 0, tzinfo=dt.UTC)
SEEDED_DAY = dt.datetime(2025, 2, 20, 9, 0, tzinfo=dt.UTC)
PLATFORM_ADMIN = "kpi-models-admin@platform.example"


def _run(cur, tenant: str, state: str, *, template: str = "incident_summary", failure_class: str | None = None,
         gate: bool | None = None, runtime: float | None = None, tick_lag: float | None = None,
         published: bool = False, created: dt.datetime = AT) -> str:
    run_id = uuid.uuid4().hex[:16]
    started = created + dt.timedelta(seconds=3) if state != "queued" else None
    ended = started + dt.timedelta(seconds=runtime) if runtime is not None else None
    cur.execute(
        """insert into control.report_runs
               (run_id, template_key, template_version, tenant_id, window_start, window_end, formats, requester,
                trigger, request, input_hash, state, failure_class, gate_passed, started_at, ended_at, published_at,
                tick_at, artifact_location, manifest_sha256, created_at)
           values (%s, %s, 1, %s, '2025-02-01', '2025-03-01', '{csv}', 'kpi-test', %s, '{}', %s, %s, %s, %s,
                   %s, %s, %s, %s, %s, %s, %s)""",
        (run_id, template, tenant, "schedule" if tick_lag is not None else "manual", uuid.uuid4().hex, state,
         failure_class, gate, started, ended, ended if published else None,
         started - dt.timedelta(seconds=tick_lag) if tick_lag is not None else None,
         f"/nowhere/{run_id}" if published else None, "f" * 64 if published else None, created))
    return run_id


def build(seeded_tenants: list[str]) -> dict[str, str]:
    """The rows above, then the KPI models rebuilt (their dbt tests included); returns the new
    tenants ('a', 'b') and the deprecated template key."""
    a, b = f"kpima{uuid.uuid4().hex[:6]}", f"kpimb{uuid.uuid4().hex[:6]}"
    deprecated = f"kpi_dep_{uuid.uuid4().hex[:6]}"
    with warehouse.connection() as conn:
        upsert_principal(conn, PLATFORM_ADMIN, roles=["platform_admin"], tenants=["*"])
        upsert_principal(conn, f"admin@{a}.example", roles=["tenant_admin"], tenants=[a])
        upsert_principal(conn, f"manager@{a}.example", roles=["manager"], tenants=[a])
        with conn, conn.cursor() as cur:
            cur.execute("""insert into control.template_versions (template_key, version, content_hash, content, state,
                               author, approved_by, approved_at, deprecated_by, deprecated_at, deprecation_reason)
                           values (%s, 1, 'h', '{}', 'deprecated', 'kpi-author', 'kpi-approver', %s, 'kpi-approver', %s,
                                   'superseded')""", (deprecated, AT - dt.timedelta(days=3), AT - dt.timedelta(days=1)))
            r1 = _run(cur, a, "completed", gate=True, runtime=20, tick_lag=90, published=True)
            r2 = _run(cur, a, "completed", gate=True, runtime=40, tick_lag=30, published=True,
                      template="sla_performance")
            _run(cur, a, "expired", gate=True, runtime=12)
            _run(cur, a, "failed", failure_class="validation_failed", gate=False, runtime=5)
            _run(cur, a, "failed", failure_class="query_failure", runtime=2, template="sla_performance")
            _run(cur, a, "cancelled", failure_class="cancelled", template=deprecated)
            _run(cur, a, "running")
            _run(cur, a, "queued")
            # a late schedule tick: started 45 minutes after its tick
            r3 = _run(cur, b, "completed", gate=True, runtime=100, tick_lag=2700, published=True)
            _run(cur, b, "failed", failure_class="timeout", gate=True, runtime=900)
            # the previous day and the next: not DAY's
            _run(cur, a, "failed", failure_class="query_failure", created=AT - dt.timedelta(days=1))
            _run(cur, b, "completed", runtime=1, created=AT + dt.timedelta(days=1))
            for tenant, run_id, channel, status in [
                    (a, r1, "email", "sent"), (a, r1, "email", "failed_permanent"), (a, r2, "webhook", "sent"),
                    (a, r2, "webhook", "failed_transient"), (a, r2, "bucket", "pending"), (b, r3, "email", "sent"),
                    (b, r3, "bucket", "sent")]:
                cur.execute("""insert into control.deliveries (idempotency_key, run_id, tenant_id, template_key,
                                   sensitivity, channel, address, status, sent_at, created_at)
                               values (%s, %s, %s, 'incident_summary', 'internal', %s, 'x', %s, %s, %s)""",
                            (uuid.uuid4().hex, run_id, tenant, channel, status, AT if status == "sent" else None, AT))
            cur.execute("""insert into control.artifacts (run_id, tenant_id, template_key, template_version, format,
                               name, store, storage_key, location, bytes, sha256, sensitivity, retention_until)
                           values (%s, %s, 'incident_summary', 1, 'csv', 'report.csv', 'local', 'k', 'l', 1, %s,
                                   'confidential', %s)""", (r1, a, "0" * 64, AT + dt.timedelta(days=90)))
            for tenant, run_id, outcome, reason in [
                    (a, r1, "denied", "link expired at 2025-03-01T00:00:00+00:00"),
                    (a, r1, "denied", f"revoked by admin@{a}.example at 2025-03-02T00:00:00+00:00: leaked"),
                    (a, r2, "denied", "viewer@x.example has none of the roles this template allows to download (x)"),
                    (a, r2, "denied", "run tenant zzz differs from the link's tenant"),
                    (a, r2, "granted", "granted"),
                    (b, r3, "denied", "link expired at 2025-03-03T00:00:00+00:00"),
                    (None, None, "denied", "unknown token"), (None, None, "denied", "something new")]:
                cur.execute("""insert into control.access_events (at, tenant_id, run_id, outcome, reason)
                               values (%s, %s, %s, %s, %s)""", (AT, tenant, run_id, outcome, reason))
            cur.execute("""insert into control.security_events (kind, actor, tenant_id, at)
                           values ('tenant_mismatch', 'kpi-test', %s, %s)""", (a, AT))
            for tenant in seeded_tenants:  # failed, not completed: nothing for retention or corrections to act on
                _run(cur, tenant, "failed", failure_class="query_failure", runtime=1, created=SEEDED_DAY)
        # The audit log is append-only and stamps rows with the clock: the clock (only) is set to DAY.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(audit, "dt", SimpleNamespace(UTC=dt.UTC, datetime=SimpleNamespace(now=lambda tz=None: AT)))
            for tenant in (b, None):
                audit.record_now(conn, actor="kpi-test", action="delivery.refused", target="email:x@elsewhere.example",
                                 outcome="denied", tenant_id=tenant, details={"reason": "domain not allowed"})
    dbt_manifest.build(select="path:models/kpis")
    return {"a": a, "b": b, "deprecated": deprecated}
