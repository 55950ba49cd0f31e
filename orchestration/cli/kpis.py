"""`nexus-reports kpis`: the ten operational KPIs (Appendix B) of a tenant or the platform."""

from __future__ import annotations

import click

from orchestration.cli import params
from orchestration.cli.base import Command
from orchestration.cli.tables import Column, echo_table
from orchestration.db import warehouse
from orchestration.kpis.compute import KpiSet, Rate, Spread


def _rate(rate: Rate) -> str:
    if rate.value is None:
        return "- (none)"
    return f"{rate.value:.1%} ({rate.numerator}/{rate.denominator})"


def _spread(spread: Spread) -> str:
    if not spread.count:
        return "- (none)"
    return f"p50 {spread.p50:.1f}s  p95 {spread.p95:.1f}s  max {spread.max:.1f}s  (n={spread.count})"


def _each(values: dict, show) -> str:
    return "; ".join(f"{k}: {show(v)}" for k, v in values.items()) or "-"


def rows(k: KpiSet) -> list[tuple[str, str, str]]:
    usage = k.template_usage
    v = k.violations
    return [
        ("1", "run success rate", _rate(k.run_success)),
        ("2", "failure rate by class", _each(k.failure_by_class, _rate)),
        ("3", "schedule lag, tick to start", _spread(k.lag_tick_to_start)),
        ("3", "schedule lag, start to published", _spread(k.lag_start_to_published)),
        ("4", "delivery success rate by channel", _each(k.delivery_by_channel, _rate)),
        ("5", "Gate B failure rate", _rate(k.gate_b_failure)),
        ("6", "runs per template version", _each({f"{t} v{n}": c for (t, n), c in usage.runs_by_version.items()}, str)),
        ("6", "runs of deprecated versions", str(usage.deprecated_version_runs)),
        ("6", "templates without runs", ", ".join(usage.templates_without_runs) or "-"),
        ("7", "link access denials by reason", _each(k.denials_by_reason, str)),
        ("8", "policy violation attempts",
         f"{v.total} (refused distributions {v.refused_distributions}, tenant mismatches {v.tenant_mismatches}, "
         f"denied sensitive downloads {v.denied_sensitive_downloads})"),
        ("9", "p95 runtime by template", _each(k.p95_runtime_by_template, lambda s: f"{s:.1f}s")),
        ("10", "complete provenance", _rate(k.provenance_complete)),
    ]


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
