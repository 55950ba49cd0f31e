"""`/metrics`: the service's live numbers in Prometheus text format, every name `nexus_`.

Only for platform-wide principals: the labels name every tenant. Runs, deliveries and links are
counted from the control schema when Prometheus scrapes (a custom collector), so the numbers are
right whichever process did the work (a Dagster worker, the CLI, another API replica). API
requests are counted in this process by the request middleware (api/requests.py), since only it
sees them.

What moves and how: `nexus_runs_total` counts ended runs by state (an expired run stays counted
as completed: it did complete) and only grows; runs still queued or running are a gauge. A
delivery moves between statuses (pending -> sent), so deliveries are a gauge by status; link
requests (granted or denied) and links created only grow.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from orchestration.access import policy
from orchestration.api.deps import Conn, CurrentPrincipal
from orchestration.kpis import denials, live
from orchestration.services import definition_checks

RUNTIME_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
LAG_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
ENDED_AS = {"completed": "completed", "expired": "completed", "failed": "failed", "cancelled": "cancelled"}


def _histogram(name: str, doc: str, label: str, samples: dict[str, list[float]],
               buckets: tuple[float, ...]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label] if label else [])
    for key, values in sorted(samples.items()):
        cumulative = [(str(b), sum(v <= b for v in values)) for b in buckets] + [("+Inf", len(values))]
        family.add_metric([key] if label else [], cumulative, sum_value=math.fsum(values))
    return family


class ControlSchemaCollector(Collector):
    """Reads the control schema on every scrape through a new connection from `connect`."""

    def __init__(self, connect):
        self.connect = connect

    def collect(self) -> Iterable:
        conn = self.connect()
        try:
            with conn:  # one read-only transaction, ended here
                counts = live.read(conn)
        finally:
            conn.close()
        yield from self._runs(counts)
        yield from self._deliveries_and_links(counts)

    @staticmethod
    def _runs(counts: live.Counts) -> Iterable:
        ended = CounterMetricFamily("nexus_runs", "Report runs that ended, by state and failure class",
                                    labels=["tenant", "template", "state", "failure_class"])
        active = GaugeMetricFamily("nexus_runs_active", "Report runs queued or running now",
                                   labels=["tenant", "template", "state"])
        totals: dict[tuple[str, str, str, str], int] = defaultdict(int)
        for tenant, template, state, failure_class, n in counts.runs:
            if state in ENDED_AS:
                totals[(tenant, template, ENDED_AS[state], failure_class)] += n
            else:
                active.add_metric([tenant, template, state], n)
        for labels, n in sorted(totals.items()):
            ended.add_metric(list(labels), n)
        runtimes: dict[str, list[float]] = defaultdict(list)
        lags: dict[str, list[float]] = defaultdict(list)
        for template, runtime, lag in counts.timings:
            if runtime is not None:
                runtimes[template].append(runtime)
            if lag is not None:
                lags[""].append(lag)
        yield ended
        yield active
        yield _histogram("nexus_run_duration_seconds", "Runtime of completed runs (started to ended), by template",
                         "template", runtimes, RUNTIME_BUCKETS)
        yield _histogram("nexus_schedule_lag_seconds", "Schedule tick to run start", "", lags or {"": []}, LAG_BUCKETS)

    @staticmethod
    def _deliveries_and_links(counts: live.Counts) -> Iterable:
        deliveries = GaugeMetricFamily("nexus_deliveries", "Outbox rows by channel and current status",
                                       labels=["channel", "status"])
        for channel, status, n in counts.deliveries:
            deliveries.add_metric([channel, status], n)
        created = CounterMetricFamily("nexus_links_created", "Download links granted, by tenant", labels=["tenant"])
        for tenant, n in counts.links_created:
            created.add_metric([tenant], n)
        requests = CounterMetricFamily("nexus_link_requests", "Download link requests, granted or denied, by reason",
                                       labels=["outcome", "reason"])
        by_category: dict[tuple[str, str], int] = defaultdict(int)
        for outcome, reason, n in counts.link_requests:
            by_category[(outcome, denials.category(reason))] += n
        for labels, n in sorted(by_category.items()):
            requests.add_metric(list(labels), n)
        yield deliveries
        yield created
        yield requests


class ApiMetrics:
    """One app's registry: the control schema collector and this process's API requests."""

    def __init__(self, connect):
        self.registry = CollectorRegistry()  # no auto-describe: it would read the database at startup
        self.registry.register(ControlSchemaCollector(connect))
        self.requests = Counter("nexus_api_requests", "API requests by method, route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("nexus_api_request_duration_seconds", "API request time to the response's start",
                                 ["route"], registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, conn: Conn, caller: CurrentPrincipal) -> Response:
    """Prometheus text format (sync: the collector's database read runs in the thread pool).
    The numbers span every tenant (tenant ids are labels), so only a platform-wide principal
    (a platform admin, e.g. a service account Prometheus scrapes with) may read them."""
    # the token's scopes, then the policy (a token scoped without 'kpis' is refused)
    definition_checks.authorize(conn, caller, "kpis", policy.ALL_TENANTS, "/metrics", request.state.request_id)
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
