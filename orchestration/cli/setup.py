"""Setting up an instance: `init`, `seed`, `manifest`, `build`, `where`."""

from __future__ import annotations

import datetime as dt

import click

from orchestration.cli import bootstrap
from orchestration.cli.base import Command
from orchestration.db import warehouse


@click.command("init", cls=Command, help="Create schemas, the report_reader role and the control tables, "
               "register the system templates and create the signing key (idempotent).")
def init_cmd() -> None:
    from orchestration.services import provenance

    registered = bootstrap.ready()
    click.echo("warehouse ready" + (f"; registered {', '.join(registered)}" if registered else ""))
    key = provenance.ensure_key()
    click.echo(f"signing key {key.keyid} {'created' if key.created else 'present'} "
               "(`nexus-reports provenance key` prints its public part)")


@click.command("seed", cls=Command,
               help="Write deterministic sample SOC data into the raw schema (replaces what is there).")
@click.option("--tenants", default=3, show_default=True, type=click.IntRange(1, 500), help="how many tenants")
@click.option("--incidents", default=20_000, show_default=True, type=click.IntRange(0, 50_000_000),
              help="how many incidents in all")
@click.option("--seed", "seed_value", default=42, show_default=True, type=click.IntRange(0, 2**32 - 1),
              help="random seed")
@click.option("--end-date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Data ends just before this date [default: today, UTC]")
def seed_cmd(tenants: int, incidents: int, seed_value: int, end_date) -> None:
    from orchestration.dev import seed as seeding
    from orchestration.services import principals as principal_service

    bootstrap.database()
    started = dt.datetime.now()
    with warehouse.connection() as conn:
        counts = seeding.seed(conn, tenants=tenants, incidents=incidents, seed=seed_value,
                              end_date=end_date.date() if end_date else None)
        people = principal_service.seed_sample_principals(conn, seeding.tenant_ids(tenants))
    seconds = (dt.datetime.now() - started).total_seconds()
    click.echo(f"  control.principals             {people:>12,} sample principals")
    for table, rows in counts.items():
        click.echo(f"  raw.{table:<26} {rows:>12,} rows")
    click.echo(f"seeded in {seconds:.1f}s")


@click.command("manifest", cls=Command, help="Parse the dbt project into dbt_project/target/manifest.json "
               "(no database needed).")
def manifest_cmd() -> None:
    from orchestration.metrics import dbt_manifest

    click.echo(f"dbt manifest written: {dbt_manifest.parse()}")


@click.command("build", cls=Command, help="Build the dbt project (models, tests, unit tests) in the warehouse.")
@click.option("--select", default=None, help="dbt selection")
def build_cmd(select: str | None) -> None:
    from orchestration.metrics import dbt_manifest

    bootstrap.database()
    dbt_manifest.build(select=select)
    click.echo("dbt build passed")


@click.command("where", cls=Command, help="Print where data, artifacts and Dagster's home are.")
def where_cmd() -> None:
    from orchestration.artifacts import which_store
    from orchestration.settings import get_settings

    s = get_settings()
    click.echo(f"NEXUS_HOME     {s.home}")
    click.echo(f"database       {'embedded (pgserver) in ' + str(s.pgdata) if s.embedded else 'REPORTS_DATABASE_URL'}")
    click.echo(f"artifacts      {which_store.get_store(s).describe()}")
    click.echo(f"DAGSTER_HOME   {s.dagster_home}")


COMMANDS = (init_cmd, seed_cmd, manifest_cmd, build_cmd, where_cmd)
