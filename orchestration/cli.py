"""`nexus-reports`: the command line of the product."""

from __future__ import annotations

import datetime as dt
import functools
import os
import subprocess
import sys

import click

from . import dbt_manifest, warehouse
from .settings import REPO_ROOT, get_settings


class UserError(click.ClickException):
    """Shown as one line, without a traceback: the user can act on it."""


def user_errors(fn):
    """Errors a user can act on become one line on stderr and exit 1, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from .catalog import TemplateError
        from .runs import RequestError

        try:
            return fn(*args, **kwargs)
        except (warehouse.WarehouseError, dbt_manifest.DbtError, TemplateError, RequestError) as exc:
            raise UserError(str(exc)) from exc

    return wrapper


@click.group(help="Nexus Reports: governed SOC reports from dbt metrics, run by Dagster.")
def main() -> None:
    pass


@main.command(help="Create schemas, the report_reader role and the control tables (idempotent).")
@user_errors
def init() -> None:
    warehouse.ensure_database()
    click.echo("warehouse ready")


@main.command(help="Write deterministic sample SOC data into the raw schema (replaces what is there).")
@click.option("--tenants", default=3, show_default=True, type=click.IntRange(1, 500))
@click.option("--incidents", default=20_000, show_default=True, type=click.IntRange(0, 50_000_000))
@click.option("--seed", "seed_value", default=42, show_default=True, type=int)
@click.option("--end-date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Data ends just before this date [default: first day of the current month]")
@user_errors
def seed(tenants: int, incidents: int, seed_value: int, end_date) -> None:
    from . import seed as seeding

    warehouse.ensure_database()
    started = dt.datetime.now()
    with warehouse.connection() as conn:
        counts = seeding.seed(
            conn, tenants=tenants, incidents=incidents, seed=seed_value,
            end_date=end_date.date() if end_date else None,
        )
    seconds = (dt.datetime.now() - started).total_seconds()
    for table, rows in counts.items():
        click.echo(f"  raw.{table:<26} {rows:>12,} rows")
    click.echo(f"seeded in {seconds:.1f}s")


@main.command("manifest", help="Parse the dbt project into dbt_project/target/manifest.json (no database needed).")
@user_errors
def manifest_cmd() -> None:
    path = dbt_manifest.parse()
    click.echo(f"dbt manifest written: {path}")


@main.command(help="Build the dbt project (models, tests, unit tests) in the warehouse.")
@click.option("--select", default=None, help="dbt selection")
@user_errors
def build(select: str | None) -> None:
    warehouse.ensure_database()
    dbt_manifest.build(select=select)
    click.echo("dbt build passed")


@main.command(help="Seed, build and materialize every standard report for each sample tenant for the last complete month.")
@click.option("--tenants", default=3, show_default=True, type=click.IntRange(1, 500))
@click.option("--incidents", default=20_000, show_default=True, type=click.IntRange(1, 50_000_000))
@click.option("--period", default=None, help="YYYY-MM [default: the last complete month]")
@user_errors
def demo(tenants: int, incidents: int, period: str | None) -> None:
    from .demo import print_table, run_demo

    results = run_demo(tenant_count=tenants, incidents=incidents, period=period, echo=click.echo)
    print_table(results, click.echo)
    if any(not r.ok for r in results):
        raise UserError("some report runs failed; see the table above")


@main.command(help="Start the Dagster UI (webserver and daemon) on this instance's data.")
@click.option("--port", default=3000, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True)
@user_errors
def dev(port: int, host: str) -> None:
    from . import dagster_home

    warehouse.ensure_database()
    home = dagster_home.prepare()
    if not dbt_manifest.MANIFEST_PATH.exists():
        dbt_manifest.parse()
    click.echo(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={home}); Ctrl-C stops it")
    dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
    # This process holds the embedded server for as long as Dagster runs.
    proc = subprocess.run(
        [dagster, "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-p", str(port), "-h", host],
        cwd=REPO_ROOT,
    )
    sys.exit(proc.returncode)


@main.command("where", help="Print where data, artifacts and Dagster's home are.")
@user_errors
def where() -> None:
    s = get_settings()
    click.echo(f"NEXUS_HOME     {s.home}")
    click.echo(f"database       {'embedded (pgserver) in ' + str(s.pgdata) if s.embedded else 'REPORTS_DATABASE_URL'}")
    click.echo(f"artifacts      {s.artifacts_dir}")
    click.echo(f"DAGSTER_HOME   {s.dagster_home}")


if __name__ == "__main__":
    main()
