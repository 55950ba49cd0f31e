"""The ten KPIs recomputed from control rows this test writes, for a tenant and the platform.

The window is [t0, t1): everything in it was written here (the test database is this
session's own), so the platform's numbers are exactly the two tenants' rows below.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import shutil
import uuid
from pathlib import Path

import pytest

from orchestration.access import audit
from orchestration.access.policy import AccessDenied
from orchestration.artifacts.store import MANIFEST, SIGNATURE, manifest_bytes
from orchestration.kpis.compute import Rate
from orchestration.provenance import envelope, keys
from orchestration.runs import records
from orchestration.services import kpis as kpi_service
from orchestration.settings import get_settings
from tests.helpers.principals import upsert_principal

PLATFORM_ADMIN = "kpi-admin@platform.example"


def _publish(conn, root, tenant: str, run_id: str, *, complete: bool, tamper: bool = False) -> str:
    """A published run folder with one CSV, its manifest and signed envelope, and its publish
    event in the audit log, as runs/publish.py leaves them; returns the location. It passes
    `provenance verify` unless the file is tampered with or the manifest lacks the dbt hash."""
    folder = root / tenant / "incident_summary" / "2026-01" / run_id
    folder.mkdir(parents=True)
    data = b"severity,count\nhigh,3\n"
    (folder / "report.csv").write_bytes(b"tampered\n" if tamper else data)
    with conn.cursor() as cur:
        cur.execute("select content_hash from control.template_versions where template_key = 'incident_summary' "
                    "and version = 1")
        (content_hash,) = cur.fetchone()
    manifest = {"run_id": run_id, "template": {"key": "incident_summary", "version": 1, "content_hash": content_hash},
                "dbt": {"manifest_sha256": "d" * 64}, "input_hash": "i" * 64, "gate_b": {"passed": True},
                "source_watermarks": {}, "metrics": [],
                "files": [{"name": "report.csv", "format": "csv", "bytes": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()}]}
    if not complete:
        del manifest["dbt"]
    payload = manifest_bytes(manifest)
    (folder / SIGNATURE).write_bytes(envelope.sign(payload, keys.ensure_key(get_settings())[0]))
    (folder / MANIFEST).write_bytes(payload)
    audit.record(conn, actor="kpi-test", action="report.exported", target=str(folder), outcome="succeeded",
                 tenant_id=tenant, correlation_id=run_id,
                 details={"manifest_sha256": hashlib.sha256(payload).hexdigest()})
    return str(folder)


def _run(cur, tenant: str, state: str, *, base: dt.datetime, template: str = "incident_summary", version: int = 1,
         failure_class: str | None = None, gate: bool | None = None, runtime: float | None = None,
         tick_lag: float | None = None, location: str | None = None, run_id: str | None = None) -> str:
    run_id = run_id or uuid.uuid4().hex[:16]
    started = base if state != "queued" else None
    ended = base + dt.timedelta(seconds=runtime) if runtime is not None else None
    cur.execute(
        """insert into control.report_runs
               (run_id, template_key, template_version, tenant_id, window_start, window_end, formats, requester,
                trigger, request, input_hash, state, failure_class, gate_passed, started_at, ended_at, published_at,
                tick_at, artifact_location)
           values (%s, %s, %s, %s, '2026-01-01', '2026-02-01', '{csv}', 'kpi-test', %s, '{}', %s, %s, %s, %s,
                   %s, %s, %s, %s, %s)""",
        (run_id, template, version, tenant, "schedule" if tick_lag is not None else "manual", uuid.uuid4().hex,
         state, failure_class, gate, started, ended, ended if state == "completed" else None,
         base - dt.timedelta(seconds=tick_lag) if tick_lag is not None else None, location))
    return run_id


@pytest.fixture(scope="module")
def world(built, tmp_path_factory):
    """Two new tenants' runs, deliveries, denials and violations in a window of their own."""
    from orchestration.db import warehouse

    a, b = f"kpia{uuid.uuid4().hex[:6]}", f"kpib{uuid.uuid4().hex[:6]}"
    deprecated = f"kpi_old_{uuid.uuid4().hex[:6]}"
    root = tmp_path_factory.mktemp("kpi-artifacts")
    with warehouse.connection() as conn:
        upsert_principal(conn, PLATFORM_ADMIN, roles=["platform_admin"], tenants=["*"])
        upsert_principal(conn, f"admin@{a}.example", roles=["tenant_admin"], tenants=[a])
        with conn, conn.cursor() as cur:
            cur.execute("select now()")
            t0 = cur.fetchone()[0]
        base = t0  # the window starts at t0, inclusive: nothing here is in the future of a command run now
        with conn, conn.cursor() as cur:
            cur.execute("""insert into control.template_versions (template_key, version, content_hash, content, state,
                               author, approved_by, approved_at, deprecated_by, deprecated_at, deprecation_reason)
                           values (%s, 1, 'h', '{}', 'deprecated', 'kpi-author', 'kpi-approver', %s, 'kpi-approver', %s,
                                   'superseded')""", (deprecated, t0 - dt.timedelta(days=2), t0 - dt.timedelta(days=1)))
            r1 = uuid.uuid4().hex[:16]
            r2 = uuid.uuid4().hex[:16]
            _run(cur, a, "completed", base=base, gate=True, runtime=20, tick_lag=90, run_id=r1,
                 location=_publish(conn, root, a, r1, complete=True))
            _run(cur, a, "completed", base=base, gate=True, runtime=40, tick_lag=30, run_id=r2,
                 location=_publish(conn, root, a, r2, complete=True, tamper=True))
            _run(cur, a, "failed", base=base, failure_class="validation_failed", gate=False, runtime=5)
            _run(cur, a, "failed", base=base, failure_class="query_failure", runtime=2)
            _run(cur, a, "cancelled", base=base, failure_class="cancelled", template=deprecated)
            _run(cur, a, "running", base=base)
            r3 = uuid.uuid4().hex[:16]
            _run(cur, b, "completed", base=base, gate=True, runtime=100, run_id=r3,
                 location=_publish(conn, root, b, r3, complete=False))
            _run(cur, b, "failed", base=base, failure_class="storage_failure", gate=True, runtime=7)
            for tenant, run_id, channel, status in [(a, r1, "email", "sent"), (a, r1, "email", "failed_permanent"),
                                                    (a, r2, "webhook", "sent"), (a, r2, "bucket", "pending"),
                                                    (b, r3, "email", "sent")]:
                cur.execute("""insert into control.deliveries (idempotency_key, run_id, tenant_id, template_key,
                                   sensitivity, channel, address, status, sent_at)
                               values (%s, %s, %s, 'incident_summary', 'internal', %s, 'x', %s, %s)""",
                            (uuid.uuid4().hex, run_id, tenant, channel, status, base if status == "sent" else None))
            cur.execute("""insert into control.artifacts (run_id, tenant_id, template_key, template_version, format,
                               name, store, storage_key, location, bytes, sha256, sensitivity, retention_until)
                           values (%s, %s, 'incident_summary', 1, 'csv', 'report.csv', 'local', 'k', 'l', 1, %s,
                                   'confidential', %s)""", (r1, a, "0" * 64, base + dt.timedelta(days=90)))
            # the texts links/service.py writes; the KPI counts them by kind
            for tenant, run_id, reason in [
                    (a, r1, "link expired at 2026-01-01T00:00:00+00:00"),
                    (a, r2, f"revoked by admin@{a}.example at 2026-01-02T00:00:00+00:00: leaked in a chat"),
                    (a, r2, "viewer@x.example has none of the roles this template allows to download (manager)"),
                    (b, r3, "link expired at 2026-01-03T00:00:00+00:00"), (None, None, "unknown token")]:
                cur.execute("""insert into control.access_events (at, tenant_id, run_id, outcome, reason)
                               values (%s, %s, %s, 'denied', %s)""", (base, tenant, run_id, reason))
            cur.execute("""insert into control.security_events (kind, actor, tenant_id)
                           values ('tenant_mismatch', 'kpi-test', %s)""", (a,))
        audit.record_now(conn, actor="kpi-test", action="delivery.refused", target="email:x@elsewhere.example",
                         outcome="denied", tenant_id=b, details={"reason": "domain not allowed"})
        with conn, conn.cursor() as cur:
            cur.execute("select now() + interval '5 minutes'")
            t1 = cur.fetchone()[0]
            cur.execute("select distinct template_key from control.template_versions where state = 'approved'")
            approved = {r[0] for r in cur.fetchall()}
    return {"a": a, "b": b, "t0": t0, "t1": t1, "deprecated": deprecated, "approved": approved, "verified": r1,
            "tampered": r2, "root": root}


def _kpis(conn, world, tenant, actor=PLATFORM_ADMIN):
    return kpi_service.kpis(conn, actor=actor, tenant_id=tenant, since=world["t0"], now=world["t1"])


def test_a_tenants_kpis_are_recomputed_from_its_rows(conn, world):
    k = _kpis(conn, world, world["a"])
    assert k.run_success == Rate(2, 5)  # 2 completed of 5 ended; the running one is not counted
    assert k.failure_by_class == {"cancelled": Rate(1, 5), "query_failure": Rate(1, 5),
                                  "validation_failed": Rate(1, 5)}
    assert (k.lag_tick_to_start.count, k.lag_tick_to_start.p50, k.lag_tick_to_start.max) == (2, 30.0, 90.0)
    assert (k.lag_start_to_published.p50, k.lag_start_to_published.p95) == (20.0, 40.0)
    assert k.delivery_by_channel == {"email": Rate(1, 2), "webhook": Rate(1, 1)}  # pending: no outcome yet
    assert k.gate_b_failure == Rate(1, 3)
    assert k.template_usage.runs_by_version == {("incident_summary", 1): 5, (world["deprecated"], 1): 1}
    assert k.template_usage.deprecated_version_runs == 1
    assert "incident_summary" not in k.template_usage.templates_without_runs
    assert k.denials_by_reason == {"expired": 1, "not_allowed": 1, "revoked": 1}
    v = k.violations
    assert (v.refused_distributions, v.tenant_mismatches, v.denied_sensitive_downloads) == (0, 1, 1)
    assert k.p95_runtime_by_template == {"incident_summary": 40.0}
    assert k.provenance_complete == Rate(1, 2)  # the tampered file fails its sha256


def test_the_platform_kpis_span_every_tenant(conn, world):
    k = _kpis(conn, world, None)
    assert k.run_success == Rate(3, 7)
    assert k.failure_by_class["storage_failure"] == Rate(1, 7)
    assert k.delivery_by_channel["email"] == Rate(2, 3)
    assert k.gate_b_failure == Rate(1, 5)
    assert k.denials_by_reason == {"expired": 2, "not_allowed": 1, "revoked": 1, "unknown_token": 1}
    assert (k.violations.refused_distributions, k.violations.tenant_mismatches) == (1, 1)
    assert k.p95_runtime_by_template == {"incident_summary": 100.0}
    assert k.provenance_complete == Rate(1, 3)  # b's manifest names no dbt manifest hash
    assert set(k.template_usage.templates_without_runs) == world["approved"] - {"incident_summary"}


def test_a_tenant_admin_sees_its_tenant_only(conn, world):
    admin = f"admin@{world['a']}.example"
    assert _kpis(conn, world, world["a"], actor=admin).run_success == Rate(2, 5)
    with pytest.raises(AccessDenied, match="not a member"):
        _kpis(conn, world, world["b"], actor=admin)
    with pytest.raises(AccessDenied):
        _kpis(conn, world, None, actor=admin)


def test_the_kpis_command_prints_the_ten_kpis_with_their_window(world):
    from tests.helpers.cli import invoke, one_line_error

    since = (world["t0"] - dt.timedelta(days=1)).date()
    result = invoke("kpis", "--tenant", world["a"], "--since", since.isoformat(), "--as", f"admin@{world['a']}.example")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"KPIs of {world['a']}, {since:%Y-%m-%d} 00:00Z .. ")
    assert len(lines) == 2 + 13  # window, header, ten KPIs in 13 rows (lag and usage take several)
    assert any("run success rate" in line and "40.0% (2/5)" in line for line in lines), result.output
    assert any("link access denials by reason" in line and "expired: 1; not_allowed: 1; revoked: 1" in line
               for line in lines), result.output
    assert any("complete provenance" in line and "50.0% (1/2)" in line for line in lines)
    assert any("schedule lag, tick to start" in line and "p50 30.0s  p95 90.0s  max 90.0s  (n=2)" in line
               for line in lines)
    refused = invoke("kpis", "--tenant", world["b"], "--as", f"admin@{world['a']}.example")
    assert refused.exit_code == 1
    assert "not a member of tenant" in one_line_error(refused.output)


def test_a_run_counts_complete_only_when_it_passes_provenance_verify(conn, world):
    """The KPI runs the verification `provenance verify` runs: the complete run passes it; copies
    of it that fail one check each are named by that check."""
    record = records.get_run(conn, world["verified"])
    assert kpi_service.provenance_gaps(conn, record) == []
    assert kpi_service.provenance_gaps(conn, records.get_run(conn, world["tampered"]))[0].startswith(
        "file report.csv: 9 bytes")

    def variant(name: str, change) -> list[str]:
        folder = Path(world["root"]) / name / "incident_summary" / "2026-01" / record.run_id
        shutil.copytree(record.artifact_location, folder)
        change(folder)
        return kpi_service.provenance_gaps(conn, dataclasses.replace(record, artifact_location=str(folder)))

    unsigned = variant("unsigned", lambda f: (f / SIGNATURE).unlink())
    assert unsigned == ["signature: manifest.sig.json is missing: the run is not signed"]

    def resigned_with_other_content(folder: Path) -> None:  # signed, but not the approved template content
        manifest = json.loads((folder / MANIFEST).read_bytes())
        manifest["template"]["content_hash"] = "e" * 64
        payload = manifest_bytes(manifest)
        (folder / SIGNATURE).write_bytes(envelope.sign(payload, keys.ensure_key(get_settings())[0]))
        (folder / MANIFEST).write_bytes(payload)

    [gap] = variant("other-content", resigned_with_other_content)
    assert gap.startswith("template: incident_summary v1: the manifest names content eeeeeeeeeeee")
