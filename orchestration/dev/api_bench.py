"""`nexus-reports bench api`: the Reporting API's latencies over real HTTP, against the same query
run bare in the same session.

Preview: N previews of one definition (median and p95), against the compiled SELECT executed
directly as report_reader (no HTTP, no checks, no audit): the ratio is what the API adds. Run:
trigger (POST .../run) to completed and to a downloaded file, each run through the real path (a
worker process executing Dagster's `report_run` job), against the bare query again.
Needs seeded, built data (`make demo` first).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable

import httpx

from orchestration.access import clearance, policy, tenants
from orchestration.access.policy import PLATFORM_ADMIN
from orchestration.api.app import create_app
from orchestration.api.serving import serving
from orchestration.catalog import definition_store
from orchestration.db import warehouse
from orchestration.dev.demo_api import caller_with_token, sample_definition
from orchestration.kpis.compute import percentile
from orchestration.services import definition_checks, registry

DEFINITIONS, RUNS = "/reports/definitions", "/reports/runs"


def _bare_query_ms(definition_id: str, principal_id: str, tenant: str, repeat: int) -> float:
    """The definition's compiled preview SELECT, executed directly as report_reader (median ms)."""
    with warehouse.connection() as conn:
        definition = definition_store.get(conn, definition_id)
        version = definition_store.get_version(conn, definition_id, definition.current_version)
        principal = policy.get_principal(conn, principal_id)
        _, compiled = definition_checks.compile_spec(conn, clearance.viewer_for(principal), version.spec, tenant,
                                                     row_limit=101)
    times = []
    with warehouse.reader_connection() as reader:
        for _ in range(repeat):
            started = time.perf_counter()
            with warehouse.reader_transaction(reader, tenant) as cur:
                cur.execute(compiled.sql, compiled.params)
                cur.fetchall()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _one_run(client: httpx.Client, headers: dict, definition_id: str, day: dt.date) -> tuple[float, float, int]:
    """(seconds to completed, seconds to the downloaded file, file bytes) for one run."""
    started = time.perf_counter()
    window = {"date_from": str(day - dt.timedelta(days=29)), "date_to": str(day)}
    run = client.post(f"{DEFINITIONS}/{definition_id}/run", json={"format": "csv", "parameters": window},
                      headers=headers).json()
    while (status := client.get(f"{RUNS}/{run['run_id']}", headers=headers).json())["status"] in ("queued", "running"):
        time.sleep(0.05)
    completed = time.perf_counter() - started
    if status["status"] != "completed":
        raise RuntimeError(f"run {run['run_id']} {status['status']}: {status['errors']}")
    link = client.get(f"{RUNS}/{run['run_id']}/download", params={"format": "csv"}, headers=headers).json()
    body = httpx.get(link["download_url"], timeout=60).content
    return completed, time.perf_counter() - started, len(body)


def run(*, previews: int = 30, runs: int = 3, echo: Callable[[str], None] = print) -> dict[str, float]:
    with warehouse.connection() as conn:
        entities = registry.register_system_entities(conn, actor=PLATFORM_ADMIN)
        tenant = tenants.list_tenant_ids(conn)[0]
        analyst_id = f"analyst@{tenant}.example"
        _, analyst = caller_with_token(conn, analyst_id)
        _, approver = caller_with_token(conn, policy.APPROVERS[0])
    incidents = next(e for e in entities if e.entity_name == "incidents" and e.tenant_id is None)
    with serving(create_app(), name="bench-api") as base, httpx.Client(base_url=base, timeout=120) as client:
        headers = {"Authorization": f"Bearer {analyst}"}
        body = sample_definition([incidents.entity_id]).model_dump(mode="json", exclude_none=True)
        definition_id = client.post(DEFINITIONS, json=body, headers=headers).json()["report_definition_id"]
        client.post(f"{DEFINITIONS}/{definition_id}/activate", headers={"Authorization": f"Bearer {approver}"})
        times = []
        for _ in range(previews):
            started = time.perf_counter()
            client.post(f"{DEFINITIONS}/{definition_id}/preview", json={}, headers=headers).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
        bare = _bare_query_ms(definition_id, analyst_id, tenant, previews)
        numbers = {"preview_median_ms": statistics.median(times), "preview_p95_ms": percentile(sorted(times), 95),
                   "bare_query_ms": bare}
        echo(f"preview over HTTP ({previews}x): median {numbers['preview_median_ms']:.1f} ms, p95 "
             f"{numbers['preview_p95_ms']:.1f} ms; bare query {bare:.1f} ms (x{numbers['preview_median_ms'] / bare:.1f})")
        today = dt.datetime.now(dt.UTC).date()
        results = [_one_run(client, headers, definition_id, today - dt.timedelta(days=1 + i)) for i in range(runs)]
    numbers["run_to_completed_s"] = statistics.median(r[0] for r in results)
    numbers["run_to_file_s"] = statistics.median(r[1] for r in results)
    echo(f"run over HTTP ({runs}x, worker + Dagster job): trigger to completed median {numbers['run_to_completed_s']:.2f} s, "
         f"to downloaded file {numbers['run_to_file_s']:.2f} s ({results[0][2]:,} bytes); bare query {bare:.1f} ms")
    return numbers
