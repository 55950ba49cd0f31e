"""/metrics: Prometheus text that prometheus-client's own parser reads, counted from the control
schema at scrape time (a run completed by another connection moves the counter)."""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families

from orchestration.runs import records
from tests.api.conftest import auth
from tests.helpers.principals import upsert_principal

SCRAPER = "svc:kpi-prometheus"


def _scrape(client, token) -> dict[str, dict[tuple, float]]:
    """family name -> {(sample name, sorted labels): value}."""
    response = client.get("/metrics", headers=auth(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {f.name: {(s.name, tuple(sorted(s.labels.items()))): s.value for s in f.samples}
            for f in text_string_to_metric_families(response.text)}


def _running_run(conn, tenant: str) -> str:
    run_id = uuid.uuid4().hex[:16]
    with conn, conn.cursor() as cur:
        cur.execute(
            """insert into control.report_runs (run_id, template_key, template_version, tenant_id, window_start,
                   window_end, formats, requester, trigger, request, input_hash, state, stage, started_at)
               values (%s, 'incident_summary', 1, %s, '2026-01-01', '2026-02-01', '{csv}', 'kpi-test', 'manual',
                       '{}', %s, 'running', 'render', now() - interval '42 seconds')""",
            (run_id, tenant, uuid.uuid4().hex))
    return run_id


def test_metrics_parse_and_the_run_counter_moves_when_a_run_completes(client, token_for, conn):
    upsert_principal(conn, SCRAPER, roles=["platform_admin"], tenants=["*"])
    token = token_for(SCRAPER)
    tenant = f"kpim{uuid.uuid4().hex[:6]}"
    run_id = _running_run(conn, tenant)
    completed = ("nexus_runs_total", (("failure_class", ""), ("state", "completed"), ("template", "incident_summary"),
                                      ("tenant", tenant)))
    running = ("nexus_runs_active", (("state", "running"), ("template", "incident_summary"), ("tenant", tenant)))

    before = _scrape(client, token)
    assert completed not in before["nexus_runs"]
    assert before["nexus_runs_active"][running] == 1
    assert records.finish_run(conn, run_id, "completed")
    with conn, conn.cursor() as cur:
        cur.execute("""insert into control.access_events (at, tenant_id, run_id, outcome, reason)
                       values (now(), %s, %s, 'denied', 'link expired at 2026-01-01T00:00:00+00:00')""",
                    (tenant, run_id))
    after = _scrape(client, token)
    assert after["nexus_runs"][completed] == 1
    assert running not in after["nexus_runs_active"]
    runtime_count = ("nexus_run_duration_seconds_count", (("template", "incident_summary"),))
    assert after["nexus_run_duration_seconds"][runtime_count] == before["nexus_run_duration_seconds"].get(
        runtime_count, 0) + 1
    for family in ("nexus_schedule_lag_seconds", "nexus_deliveries", "nexus_links_created", "nexus_link_requests"):
        assert family in after
    expired = ("nexus_link_requests_total", (("outcome", "denied"), ("reason", "expired")))  # a category, not the text
    assert after["nexus_link_requests"][expired] == before["nexus_link_requests"].get(expired, 0) + 1
    # the first scrape is counted by the request middleware, under its route, by the second
    scrapes = ("nexus_api_requests_total", (("method", "GET"), ("route", "/metrics"), ("status", "200")))
    assert after["nexus_api_requests"][scrapes] == before["nexus_api_requests"].get(scrapes, 0) + 1


def test_metrics_are_for_platform_wide_principals_only(client, token_for, conn):
    assert client.get("/metrics").status_code == 401
    upsert_principal(conn, "admin@kpim-only.example", roles=["tenant_admin"], tenants=["kpim-only"])
    response = client.get("/metrics", headers=auth(token_for("admin@kpim-only.example")))
    assert response.status_code == 403
    assert "nexus_runs" not in response.text
    upsert_principal(conn, SCRAPER, roles=["platform_admin"], tenants=["*"])
    assert client.get("/metrics", headers=auth(token_for(SCRAPER, ("view",)))).status_code == 403
    assert client.get("/metrics", headers=auth(token_for(SCRAPER, ("kpis",)))).status_code == 200
