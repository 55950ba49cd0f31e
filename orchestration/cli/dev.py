"""Developer commands: `demo`, `dev` (Dagster UI, worker pool and link service), `serve`, `workers`, `bench`."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import click

from orchestration.cli import bootstrap, params
from orchestration.cli.base import Command, Group
from orchestration.cli.errors import UserError
from orchestration.db import warehouse


@click.command("demo", cls=Command, help="Seed, build and materialize every standard report for each sample tenant "
               "for the last complete month, then save, approve and run one report definition through the "
               "Reporting API's services.")
@click.option("--tenants", default=3, show_default=True, type=click.IntRange(1, 500), help="how many tenants")
@click.option("--incidents", default=20_000, show_default=True, type=click.IntRange(1, 50_000_000),
              help="how many incidents in all")
@click.option("--period", default=None, help="YYYY-MM [default: the last complete month]")
def demo_cmd(tenants: int, incidents: int, period: str | None) -> None:
    # run_demo bootstraps on purpose: database, sample data, dbt build, system templates approved.
    from orchestration.dev.demo import build_evidence, print_summary, print_table, run_demo, verify_runs
    from orchestration.dev.demo_api import run_definition

    started = dt.datetime.now(dt.UTC)
    results = run_demo(tenant_count=tenants, incidents=incidents, period=period, echo=click.echo)
    print_table(results, click.echo)
    if any(not r.ok for r in results):
        raise UserError("some report runs failed; see the table above")
    if run_definition(click.echo).state != "completed":
        raise UserError("the Reporting API definition's run failed; see above")
    if not verify_runs(results, click.echo):
        raise UserError("a published run does not verify; see the provenance verify lines above")
    print_summary(results, click.echo)
    _print_kpis(since=started)
    build_evidence(click.echo)  # last: the path of the pack is the demo's last line


def _print_kpis(since: dt.datetime) -> None:
    """The KPIs of the demo's runs, as `nexus-reports kpis --as <platform admin>` prints them."""
    from orchestration.access.policy import PLATFORM_ADMIN
    from orchestration.cli.kpis import echo_kpis
    from orchestration.services import kpis

    click.echo("")
    with warehouse.connection() as conn:
        echo_kpis(kpis.kpis(conn, actor=PLATFORM_ADMIN, since=since), click.echo)


@click.command("dev", cls=Command, help="Start the Dagster UI (webserver and daemon) and the Reporting API "
               "with the link service, on this instance's data.")
@click.option("--port", default=3000, show_default=True, type=params.PORT, help="port of the Dagster UI")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--links-port", default=8088, show_default=True, type=params.PORT, help="port of the Reporting API and links")
def dev_cmd(port: int, host: str, links_port: int) -> None:
    from orchestration.defs import dagster_home
    from orchestration.metrics import dbt_manifest
    from orchestration.settings import REPO_ROOT

    if port == links_port:
        raise click.BadParameter("the Dagster UI and the link service need different ports", param_hint="--links-port")
    bootstrap.database()
    home = dagster_home.prepare()
    if not dbt_manifest.MANIFEST_PATH.exists():
        dbt_manifest.parse()
    click.echo(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={home}); Ctrl-C stops it")
    bindir = os.path.dirname(sys.executable)
    # The link service (downloads) next to Dagster's webserver and daemon; it stops with them.
    click.echo(f"Reporting API and link service on http://{host}:{links_port} (docs: /docs)")
    link_service = subprocess.Popen(
        [os.path.join(bindir, "nexus-reports"), "serve", "--host", host, "--port", str(links_port)], cwd=REPO_ROOT)
    # The warm worker pool the run launcher hands dequeued runs to (and CLI/API runs reach the queue through).
    pool = subprocess.Popen([os.path.join(bindir, "nexus-reports"), "workers"], cwd=REPO_ROOT)
    try:
        # This process holds the embedded server for as long as Dagster runs.
        proc = subprocess.run(
            [os.path.join(bindir, "dagster"), "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-p", str(port), "-h", host],
            cwd=REPO_ROOT,
        )
    finally:
        # Ctrl-C reached them too (same process group); otherwise ask them to stop, then insist.
        for child in (link_service, pool):
            if child.poll() is None:
                child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
    sys.exit(proc.returncode)


@click.command("serve", cls=Command, help="Serve the Reporting API (docs at /docs) and the download links "
               "(/links/<token>) on one port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8088, show_default=True, type=params.PORT, help="port to listen on")
def serve_cmd(host: str, port: int) -> None:
    from orchestration.api import app

    bootstrap.database()
    click.echo(f"Reporting API and link service on http://{host}:{port} (docs: /docs); Ctrl-C stops it")
    app.serve(host=host, port=port)


@click.command("workers", cls=Command, help="Run the warm worker pool: processes with Dagster, Great Expectations and "
               "WeasyPrint loaded that execute the runs Dagster's queue dequeues, and submit CLI and API runs to "
               "that queue. Needs Dagster's daemon (nexus-reports dev starts both). Ctrl-C stops it.")
@click.option("--processes", default=2, show_default=True, type=click.IntRange(1, 64),
              help="worker processes (runs executing at once); one per core is right")
@click.option("--max-runs", default=200, show_default=True, type=click.IntRange(1, 100_000),
              help="a worker is replaced by a fresh one after this many runs")
@click.option("--max-rss-mb", default=600, show_default=True, type=click.IntRange(100, 100_000),
              help="a worker holding more memory than this after a run is replaced")
def workers_cmd(processes: int, max_runs: int, max_rss_mb: int) -> None:
    from orchestration.defs.runs import pool

    bootstrap.database()
    pool.serve(pool.PoolConfig(processes=processes, max_runs=max_runs, max_rss_mb=max_rss_mb), echo=click.echo)


@click.group("bench", cls=Group, help="Benchmarks that print numbers (throughput, wall time, peak memory).")
def bench_group() -> None:
    pass


@bench_group.command("exports", help="Each format on a snapshot of N rows, against raw COPY and bare xlsxwriter.")
@click.option("--rows", default=100_000, show_default=True, type=click.IntRange(1, 20_000_000), help="snapshot rows")
def bench_exports_cmd(rows: int) -> None:
    from orchestration.dev import bench as benchmark
    from orchestration.evidence.sources import BenchRecorder

    bootstrap.database()
    recorder = BenchRecorder(click.echo)  # the evidence pack includes the latest output
    with warehouse.connection() as conn:
        benchmark.run(conn, rows, echo=recorder)
    click.echo(f"saved to {recorder.save('exports', f'nexus-reports bench exports --rows {rows}')}")


@bench_group.command("api", help="Reporting API over HTTP: preview latency and run trigger-to-file time, against the bare query.")
@click.option("--previews", default=30, show_default=True, type=click.IntRange(1, 10_000), help="previews to time")
@click.option("--runs", default=3, show_default=True, type=click.IntRange(1, 100), help="runs to time")
def bench_api_cmd(previews: int, runs: int) -> None:
    from orchestration.dev import api_bench
    from orchestration.evidence.sources import BenchRecorder

    bootstrap.database()
    recorder = BenchRecorder(click.echo)  # the evidence pack includes the latest output
    api_bench.run(previews=previews, runs=runs, echo=recorder)
    click.echo(f"saved to {recorder.save('api', f'nexus-reports bench api --previews {previews} --runs {runs}')}")


@bench_group.command("run", help="One small report, trigger to published, from the CLI (`nexus-reports run --wait` "
                     "as a process) and from the Reporting API (POST a definition's run, poll): min/median/max and "
                     "where the time went, stage by stage. Needs seeded, built data (`nexus-reports demo` first).")
@click.option("--template", default="sla_performance", show_default=True, help="a monthly system template")
@click.option("--tenant", default=None, help="the tenant [default: the first one]")
@click.option("--period", default=None, help="YYYY-MM [default: the last complete month]")
@click.option("--repetitions", default=5, show_default=True, type=click.IntRange(1, 100), help="runs per path")
def bench_run_cmd(template: str, tenant: str | None, period: str | None, repetitions: int) -> None:
    import psycopg2.errors

    from orchestration.access import tenants
    from orchestration.dev import run_bench
    from orchestration.evidence.sources import BenchRecorder
    from orchestration.runs import periods

    bootstrap.ready()
    try:
        with warehouse.connection() as conn:
            tenant = tenant or next(iter(tenants.list_tenant_ids(conn)), None)
    except psycopg2.errors.UndefinedTable:  # a fresh instance: no sample data loaded yet
        tenant = None
    if tenant is None:
        raise UserError("no tenants: seed sample data first (nexus-reports demo)")
    period = period or periods.last_complete_month()
    recorder = BenchRecorder(click.echo)  # the evidence pack includes the latest output
    run_bench.bench_run(template=template, tenant=tenant, period=period, requester=f"analyst@{tenant}.example",
                        repetitions=repetitions, echo=recorder)
    click.echo(f"saved to {recorder.save('run', f'nexus-reports bench run --repetitions {repetitions}')}")


@bench_group.command("gate", help="Gate B again on the frozen snapshots of published runs (the demo's), in this warm "
                     "process: CPU milliseconds per section and per run.")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(1, 100), help="timed rounds over every run")
@click.option("--profile", "profile_to", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="write cProfile stats of the timed rounds to this file")
def bench_gate_cmd(rounds: int, profile_to: Path | None) -> None:
    from orchestration.dev import gate_bench
    from orchestration.evidence.sources import BenchRecorder

    bootstrap.ready()
    recorder = BenchRecorder(click.echo)
    try:
        with warehouse.connection() as conn:
            gate_bench.bench_gate(conn, rounds=rounds, echo=recorder, profile_to=profile_to)
    except LookupError as exc:
        raise UserError(str(exc)) from exc
    click.echo(f"saved to {recorder.save('gate', f'nexus-reports bench gate --rounds {rounds}')}")


@bench_group.command("fanout", help="Seed N tenants (replacing the sample data), fire the month-end schedules as the "
                     "scheduler would (one Dagster run per tenant and template) into Dagster's run queue, served by "
                     "the daemon and the warm worker pool started here, and wait for the drain: runs/s, schedule "
                     "lag, failures, peak RSS of a worker.")
@click.option("--tenants", "tenant_count", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="tenants to seed")
@click.option("--templates", default=None, help="comma-separated template keys [default: every system template]")
@click.option("--incidents-per-tenant", default=2_000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="sample incidents per tenant")
@click.option("--processes", default=2, show_default=True, type=click.IntRange(1, 64), help="pool worker processes")
@click.option("--in-process", is_flag=True, help="the baseline instead: every run one after another in this process")
def bench_fanout_cmd(tenant_count: int, templates: str | None, incidents_per_tenant: int, processes: int,
                     in_process: bool) -> None:
    from orchestration.catalog import templates as catalog
    from orchestration.dev import run_bench
    from orchestration.evidence.sources import BenchRecorder

    known = [t.key for t in catalog.load_all()]
    chosen = [t.strip() for t in templates.split(",") if t.strip()] if templates else known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise click.BadParameter(f"unknown template {', '.join(unknown)}; known: {', '.join(known)}",
                                 param_hint="--templates")
    bootstrap.database()
    recorder = BenchRecorder(click.echo)
    run_bench.prepare_tenants(tenant_count, tenant_count * incidents_per_tenant, recorder)
    result = (run_bench.fanout(chosen, echo=recorder) if in_process
              else run_bench.fanout_queued(chosen, processes=processes, echo=recorder))
    run_bench.print_fanout(result, recorder)
    recorder.save("fanout", f"nexus-reports bench fanout --tenants {tenant_count}"
                  + (" --in-process" if in_process else f" --processes {processes}"))
    if any(not r.ok for r in result.runs):
        raise UserError(f"{sum(1 for r in result.runs if not r.ok)} of {len(result.runs)} runs failed; see above")


COMMANDS = (demo_cmd, dev_cmd, serve_cmd, workers_cmd, bench_group)
