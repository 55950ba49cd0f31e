"""`nexus-reports bench run` and `bench fanout`: what one small run and a month-end fan-out cost.

`bench run`: trigger to published for one small report, N repetitions, from the CLI (`nexus-reports
run ... --wait` as its own process: admission, then Dagster's run queue, served by the daemon and
the warm worker pool started here) and from the Reporting API (POST a definition's run over HTTP,
poll its status), through the same queue.
Each run's time is split by what its records say: the run record's timestamps (admitted,
running, published) and the stage log lines the worker wrote to Dagster's event log (freshness,
snapshot, Gate B, render, publish), each stage taking the time since the line before it.

`bench fanout`: the month-end schedules evaluated the way the daemon evaluates a tick (each
template's schedule asked for its run requests at the 1st of this month, 03:00 UTC: one run per
tenant partition), every request created and submitted as its own Dagster run of the template's
job, as the scheduler creates it; Dagster's daemon dequeues them within the instance's limits
and the run launcher hands them to the warm worker pool (`nexus-reports workers`), both started
here as they run in production. `--in-process` measures the baseline instead: every request
executed one after another in this one process. Every run keeps its own run record, snapshot,
Gate B, manifest and audit. The schedule lag of a run is its publication minus the moment the
tick was fired (tagged nexus/tick_at, so the run record keeps it).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.db import warehouse
from orchestration.dev.bench import peak_rss_mb
from orchestration.dev.bench_pool import pool_and_daemon
from orchestration.kpis.compute import percentile
from orchestration.runs import records, run_tags, worker
from orchestration.runs.run_record import RunRecord

Echo = Callable[[str], None]
# The stage log's lines (runs/engine.py, runs/publish.py) by the stage they end.
STAGE_PREFIXES = (("freshness", "freshness:"), ("snapshot", "snapshot:"), ("gate_b", "Gate B:"),
                  ("render", "render:"), ("publish", "publish:"))
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class TimedRun:
    """One run as the bench saw it: wall seconds from trigger to published, and where they went."""

    run_id: str
    seconds: float
    state: str
    stages: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class FanoutRun:
    template: str
    tenant: str
    run_id: str
    ok: bool
    seconds: float  # this run's own execution, in this process
    cpu: float  # this process's CPU seconds for it (Postgres's own CPU is not in it)
    lag: float | None  # published minus tick (None: not published)
    diagnosis: str = ""


@dataclass(frozen=True)
class FanoutResult:
    runs: tuple[FanoutRun, ...]
    seconds: float
    peak_rss_mb: float
    templates: tuple[str, ...] = field(default=())

    def line(self) -> str:
        return (f"fanout: {len(self.runs)} runs in {self.seconds:.1f} s, {rate(len(self.runs), self.seconds):.2f} runs/s, "
                f"lag p95 {_p(lags(self.runs), 95):.1f} s, peak RSS {self.peak_rss_mb:.0f} MB")


def rate(runs: int, seconds: float) -> float:
    return runs / seconds if seconds > 0 else 0.0


def lags(runs: Sequence[FanoutRun]) -> list[float]:
    return sorted(r.lag for r in runs if r.lag is not None)


def _p(values: list[float], p: float) -> float:
    return percentile(values, p) if values else 0.0


# ---------------------------------------------------------------- one run: its stages from its records

def stage_breakdown(record: RunRecord, triggered: dt.datetime, noticed: dt.datetime,
                    stage_times: Sequence[tuple[str, dt.datetime]]) -> tuple[tuple[str, float], ...]:
    """Where one run's wall time went: trigger -> admitted -> running (worker start, imports,
    Dagster's run start) -> each stage-log line -> published -> noticed by whoever waited."""
    marks: list[tuple[str, dt.datetime]] = [("trigger to admitted", record.created_at)]
    if record.started_at:
        marks.append(("admitted to running (queue, launch, Dagster run start)", record.started_at))
    last_per_stage: dict[str, dt.datetime] = {}
    for stage, at in stage_times:  # render logs a line per file: the stage ends at its last line
        last_per_stage[stage] = at
    marks += sorted(last_per_stage.items(), key=lambda kv: kv[1])
    if record.published_at:
        marks.append(("published (records, audit)", record.published_at))
    marks.append(("published to noticed (polling)", noticed))
    parts, before = [], triggered
    for label, at in marks:
        parts.append((label, max((at - before).total_seconds(), 0.0)))
        before = max(before, at)
    return tuple(parts)


def dagster_stage_times(dagster_run_id: str | None) -> list[tuple[str, dt.datetime]]:
    """The stage log lines a run wrote to Dagster's event log (its worker ran `report_run`)."""
    if not dagster_run_id:
        return []
    import dagster as dg

    found = []
    for entry in dg.DagsterInstance.get().all_logs(dagster_run_id):
        message = entry.user_message or ""
        for stage, prefix in STAGE_PREFIXES:
            if message.startswith(prefix):
                found.append((stage, dt.datetime.fromtimestamp(entry.timestamp, dt.UTC)))
    return found


def _timed(conn, run_id: str, triggered: dt.datetime, noticed: dt.datetime, wall: float) -> TimedRun:
    record = records.get_run(conn, run_id)
    conn.commit()  # ends the read: an idle open transaction holds locks that another run's DDL waits for
    stages = stage_breakdown(record, triggered, noticed, dagster_stage_times(record.dagster_run_id))
    return TimedRun(run_id=run_id, seconds=wall, state=record.state, stages=stages)


def cli_run(conn, template: str, tenant: str, period: str, requester: str) -> TimedRun:
    """`nexus-reports run TEMPLATE --tenant T --period P --as R --wait` as its own process."""
    cli = Path(sys.executable).parent / "nexus-reports"
    triggered, started = dt.datetime.now(dt.UTC), time.perf_counter()
    proc = subprocess.run([str(cli), "run", template, "--tenant", tenant, "--period", period, "--as", requester,
                           "--wait"], capture_output=True, text=True, check=False, env=os.environ.copy())
    wall = time.perf_counter() - started
    noticed = dt.datetime.now(dt.UTC)
    found = re.search(r"run (\S+) (?:queued|refused)|already active as run (\S+)", proc.stdout + proc.stderr)
    if not found:
        raise RuntimeError(f"nexus-reports run printed no run id (exit {proc.returncode}): "
                           f"{(proc.stdout + proc.stderr).strip()[-300:]}")
    return _timed(conn, found.group(1) or found.group(2), triggered, noticed, wall)


def api_runs(conn, repetitions: int, day: dt.date) -> list[TimedRun]:
    """A saved definition's run over real HTTP (POST, poll until ended), as `bench api` does it."""
    import httpx

    from orchestration.access import policy, tenants
    from orchestration.access.policy import PLATFORM_ADMIN
    from orchestration.api.app import create_app
    from orchestration.api.serving import serving
    from orchestration.dev.api_bench import DEFINITIONS, RUNS
    from orchestration.dev.demo_api import caller_with_token, sample_definition
    from orchestration.services import registry

    entities = registry.register_system_entities(conn, actor=PLATFORM_ADMIN)
    tenant = tenants.list_tenant_ids(conn)[0]
    _, analyst = caller_with_token(conn, f"analyst@{tenant}.example")
    _, approver = caller_with_token(conn, policy.APPROVERS[0])
    conn.commit()
    incidents = next(e for e in entities if e.entity_name == "incidents" and e.tenant_id is None)
    results = []
    with serving(create_app(), name="bench-run") as base, httpx.Client(base_url=base, timeout=120) as client:
        headers = {"Authorization": f"Bearer {analyst}"}
        body = sample_definition([incidents.entity_id]).model_dump(mode="json", exclude_none=True)
        definition_id = client.post(DEFINITIONS, json=body, headers=headers).json()["report_definition_id"]
        client.post(f"{DEFINITIONS}/{definition_id}/activate", headers={"Authorization": f"Bearer {approver}"})
        for i in range(repetitions):
            last = day - dt.timedelta(days=i)  # a window of its own: never the same request twice
            window = {"date_from": str(last - dt.timedelta(days=29)), "date_to": str(last)}
            triggered, started = dt.datetime.now(dt.UTC), time.perf_counter()
            response = client.post(f"{DEFINITIONS}/{definition_id}/run", json={"format": "csv", "parameters": window},
                                   headers=headers)
            response.raise_for_status()
            run_id = response.json()["run_id"]
            while client.get(f"{RUNS}/{run_id}", headers=headers).json()["status"] in ("queued", "running"):
                time.sleep(0.05)
            wall = time.perf_counter() - started
            results.append(_timed(conn, run_id, triggered, dt.datetime.now(dt.UTC), wall))
    return results


def print_runs(label: str, runs: Sequence[TimedRun], echo: Echo) -> None:
    times = [r.seconds for r in runs]
    failed = [r for r in runs if r.state != "completed"]
    echo(f"{label}: {len(runs)} runs, trigger to published min {min(times):.2f} s, median "
         f"{statistics.median(times):.2f} s, max {max(times):.2f} s"
         + (f"; {len(failed)} not completed ({', '.join(f'{r.run_id} {r.state}' for r in failed)})" if failed else ""))
    labels = [name for name, _ in runs[0].stages]
    for name in labels:
        values = [dict(r.stages).get(name, 0.0) for r in runs]
        share = statistics.median(values) / statistics.median(times) if statistics.median(times) else 0.0
        echo(f"  {name:<58} median {statistics.median(values):6.2f} s  ({share:4.0%})")


def bench_run(*, template: str, tenant: str, period: str, requester: str, repetitions: int = 5,
              api_day: dt.date | None = None, echo: Echo = print) -> dict[str, list[TimedRun]]:
    from orchestration.defs import dagster_home

    dagster_home.prepare()  # the instance whose event log holds the workers' stage lines
    with pool_and_daemon(2, echo), warehouse.connection() as conn:  # through the queue, as in production
        cli = [cli_run(conn, template, tenant, period, requester) for _ in range(repetitions)]
        print_runs(f"CLI ({template} for {tenant}, {period})", cli, echo)
        api = api_runs(conn, repetitions, api_day or dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
        print_runs("API (a definition's run, csv)", api, echo)
    every = cli + api
    echo(f"run: {len(every)} runs, median {statistics.median(r.seconds for r in every):.2f} s "
         f"(CLI {statistics.median(r.seconds for r in cli):.2f} s, API {statistics.median(r.seconds for r in api):.2f} s)")
    return {"cli": cli, "api": api}


# ---------------------------------------------------------------- the month-end fan-out

def prepare_tenants(tenant_count: int, incidents: int, echo: Echo = print) -> list[str]:
    """Seed `tenant_count` tenants (replacing the sample data), build the dbt project, the sample
    principals, the approved system templates and the tenants partition: what a fan-out needs."""
    from orchestration.dev import demo
    from orchestration.metrics import dbt_manifest

    demo.prepare(echo)
    demo.seed_tenants(tenant_count, incidents, echo)
    started = time.perf_counter()
    dbt_manifest.parse()
    dbt_manifest.build()
    echo(f"dbt build in {time.perf_counter() - started:.1f}s")
    import dagster as dg

    from orchestration.access import tenants

    instance = dg.DagsterInstance.get()
    seeded = demo.govern(instance, echo)
    # The seed replaced the tenants: partitions of an earlier, larger seed go too (as the tenants
    # sensor would remove them, later), or the tick would fire runs for tenants that are gone.
    _, gone = tenants.partition_changes(seeded, instance.get_dynamic_partitions("tenants"))
    for key in gone:
        if key != tenants.PLATFORM:  # the platform partition (reporting_kpis) is not a seeded tenant
            instance.delete_dynamic_partition("tenants", key)
    return seeded


def month_end_tick(now: dt.datetime | None = None) -> dt.datetime:
    """This month's month-end tick: the 1st, at the hour the report schedules fire (03:00 UTC)."""
    now = now or dt.datetime.now(dt.UTC)
    return dt.datetime(now.year, now.month, 1, 3, tzinfo=dt.UTC)


def fire_month_end(instance, templates: Sequence[str], tick: dt.datetime) -> list[tuple[str, str, object]]:
    """Each template's schedule evaluated at the tick, as the daemon would: (template, job, run request)."""
    import dagster as dg

    from orchestration.catalog import templates as catalog
    from orchestration.definitions import report_schedules
    from orchestration.defs.reports.schedules import job_name

    requests = []
    by_job = {schedule.job_name: schedule for schedule in report_schedules}
    for key in templates:
        schedule = by_job[job_name(catalog.load(key))]
        with dg.build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
            data = schedule.evaluate_tick(context)
        requests += [(key, schedule.job_name, request) for request in data.run_requests or []]
    return requests


def fanout(templates: Sequence[str], *, tick: dt.datetime | None = None, only_tenants: Sequence[str] | None = None,
           instance=None, echo: Echo = print) -> FanoutResult:
    """Fire the month-end tick for `templates` and execute every run request in this process
    (`only_tenants`: just the requests for those tenants, to measure a part of a tick)."""
    import dagster as dg

    from orchestration.definitions import defs

    instance = instance or dg.DagsterInstance.get()
    requests = fire_month_end(instance, templates, tick or month_end_tick())
    if only_tenants is not None:
        requests = [(k, j, r) for k, j, r in requests if request_tenant(defs, j, r) in only_tenants]
    fired = dt.datetime.now(dt.UTC)
    tags_fired = {run_tags.TICK_AT: fired.isoformat()}
    echo(f"fired the month-end tick: {len(requests)} run requests ({len(templates)} templates)")
    started, runs = time.perf_counter(), []
    with warehouse.connection() as conn:
        for i, (key, name, request) in enumerate(requests):
            job = defs.resolve_job_def(name)
            t0, cpu0 = time.perf_counter(), time.process_time()
            result = job.execute_in_process(instance=instance, partition_key=request.partition_key,
                                            tags={**request.tags, **tags_fired}, raise_on_error=False,
                                            run_config=QUIET)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            runs.append(_fanout_run(conn, key, request_tenant(defs, name, request), result.run_id, seconds, cpu))
            if i == 0:
                worker.settle_imports()  # a warm worker: what the first run imported stays out of GC walks
    return FanoutResult(runs=tuple(runs), seconds=time.perf_counter() - started, peak_rss_mb=peak_rss_mb(),
                        templates=tuple(templates))


def fanout_queued(templates: Sequence[str], *, processes: int = 2, tick: dt.datetime | None = None,
                  echo: Echo = print) -> FanoutResult:
    """Fire the month-end tick for `templates` into Dagster's run queue and wait for the drain:
    the daemon and the warm worker pool run as processes of their own, as in production."""
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.defs.runs import pool

    instance = pool.pooled_instance()  # the submissions below, as the scheduler's long-lived process
    requests = fire_month_end(instance, templates, tick or month_end_tick())
    with pool_and_daemon(processes, echo) as watch:
        location = pool.code_location(instance)
        fired = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        submitted = []
        for key, name, request in requests:
            run = pool.create_run(instance, location, name, {}, {**request.tags, run_tags.TICK_AT: fired.isoformat()},
                                  partition_key=request.partition_key,
                                  partitions_def=defs.resolve_job_def(name).partitions_def)
            instance.submit_run(run.run_id, workspace=None)
            submitted.append((key, request_tenant(defs, name, request), run.run_id))
        echo(f"fired the month-end tick: {len(submitted)} runs submitted to the queue in "
             f"{time.perf_counter() - started:.1f} s ({len(templates)} templates, {processes} pool workers)")
        pending = {run_id for _, _, run_id in submitted}
        last_report = time.perf_counter()
        while pending:
            finished = {r.run_id for r in instance.get_runs(dg.RunsFilter(run_ids=list(pending)))
                        if r.is_finished}
            pending -= finished
            watch.sample()
            if time.perf_counter() - last_report > 30:
                echo(f"  {time.perf_counter() - started:6.0f} s: {len(submitted) - len(pending)} of {len(submitted)} "
                     f"runs ended")
                last_report = time.perf_counter()
            time.sleep(1.0)
        seconds = time.perf_counter() - started
        peak = watch.peak_mb
        echo(f"pool workers: peak RSS {watch.peak_mb:.0f} MB, of it private (not shared with the warm parent) "
             f"at most {watch.private_mb:.0f} MB")
    runs = []
    with warehouse.connection() as conn:
        for key, tenant, run_id in submitted:
            runs.append(_fanout_run(conn, key, tenant, run_id, 0.0, 0.0))
    return FanoutResult(runs=tuple(runs), seconds=seconds, peak_rss_mb=peak, templates=tuple(templates))


def request_tenant(defs, job_name: str, request) -> str:
    """The tenant of a run request's tenant x period partition."""
    key = defs.resolve_job_def(job_name).partitions_def.get_partition_key_from_str(request.partition_key)
    return key.keys_by_dimension["tenant"]


def _fanout_run(conn, key: str, tenant: str, dagster_run_id: str, seconds: float, cpu: float) -> FanoutRun:
    record = records.run_for_dagster_run(conn, dagster_run_id, key)
    conn.commit()
    if record is None:
        return FanoutRun(key, tenant, "", False, seconds, cpu, None, "no run record (see the Dagster run)")
    lag = (record.published_at - record.tick_at).total_seconds() if record.published_at and record.tick_at else None
    return FanoutRun(key, record.tenant_id, record.run_id, record.state == "completed", seconds, cpu, lag,
                     record.diagnosis or "")


def print_fanout(result: FanoutResult, echo: Echo = print) -> None:
    cpu = any(r.cpu for r in result.runs)  # measured in process only
    echo(f"{'template':<28} {'runs':>5} {'seconds':>8} {'runs/s':>7} {'lag p50':>8} {'lag p95':>8} {'lag max':>8} "
         f"{'failures':>8}" + (f" {'CPU s/run':>9}" if cpu else ""))
    groups = [(key, [r for r in result.runs if r.template == key]) for key in result.templates]
    for key, runs in [*groups, ("all", list(result.runs))]:
        if not runs:
            continue
        seconds = result.seconds if key == "all" or not cpu else sum(r.seconds for r in runs)
        lagged = lags(runs)
        echo(f"{key:<28} {len(runs):>5} {seconds:>8.1f} {rate(len(runs), seconds):>7.2f} {_p(lagged, 50):>8.1f} "
             f"{_p(lagged, 95):>8.1f} {max(lagged, default=0.0):>8.1f} {sum(1 for r in runs if not r.ok):>8}"
             + (f" {statistics.mean(r.cpu for r in runs):>9.2f}" if cpu else ""))
    for r in result.runs:
        if not r.ok:
            echo(f"  failed: {r.template} for {r.tenant} {r.run_id}: {r.diagnosis}")
    echo(f"peak RSS of a worker {result.peak_rss_mb:.0f} MB")
    echo(result.line())
