"""`nexus-reports kpis`: the ten operational KPIs (Appendix B) of a tenant or the platform."""

from __future__ import annotations

import click

from orchestration.cli import params
from orchestration.cli.base import Command
from orchestration.cli.tables import Column, echo_table
from orchestration.db import warehouse
from orchestration.kpis.compute import KpiSet
from orchestration.kpis.table import rows


@click.command("kpis", cls=Command, help="The ten operational KPIs of a tenant or of the platform, over a window. Run success, "
                            "failures by class, schedule lag, delivery, Gate B, template usage, access denials, "
                            "policy violations, p95 runtime, provenance; a tenant's for its tenant admins, the "
                            "platform's for platform admins.")
@params.tenant(help_text="this tenant's KPIs (default: the platform's, across tenants)")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="window start, a UTC date (default: the last 30 days)")
@params.actor("a tenant admin of the tenant, or a platform admin")
def kpis_cmd(tenant: str | None, since, actor: str) -> None:
    from orchestration.services import kpis

    with warehouse.connection() as conn:
        result = kpis.kpis(conn, actor=actor, tenant_id=tenant, since=since.date() if since else None)
    echo_kpis(result, click.echo)


def echo_kpis(result: KpiSet, echo) -> None:
    """The table with its window (also the end of `make demo`)."""
    echo(f"KPIs of {result.tenant_id or 'the platform'}, {result.since:%Y-%m-%d %H:%MZ} .. "
         f"{result.until:%Y-%m-%d %H:%MZ}")
    echo_table([Column("#", right=True), Column("kpi"), Column("value")], rows(result), echo)
