"""The ten KPIs as rows of text (number, KPI, value): what `nexus-reports kpis` prints and the
evidence pack's KPI baseline report shows, written once."""

from __future__ import annotations

from orchestration.kpis.compute import KpiSet, Rate, Spread


def rate_text(rate: Rate) -> str:
    if rate.value is None:
        return "- (none)"
    return f"{rate.value:.1%} ({rate.numerator}/{rate.denominator})"


def spread_text(spread: Spread) -> str:
    if not spread.count:
        return "- (none)"
    return f"p50 {spread.p50:.1f}s  p95 {spread.p95:.1f}s  max {spread.max:.1f}s  (n={spread.count})"


def _each(values: dict, show) -> str:
    return "; ".join(f"{k}: {show(v)}" for k, v in values.items()) or "-"


def rows(k: KpiSet) -> list[tuple[str, str, str]]:
    usage = k.template_usage
    v = k.violations
    return [
        ("1", "run success rate", rate_text(k.run_success)),
        ("2", "failure rate by class", _each(k.failure_by_class, rate_text)),
        ("3", "schedule lag, tick to start", spread_text(k.lag_tick_to_start)),
        ("3", "schedule lag, start to published", spread_text(k.lag_start_to_published)),
        ("4", "delivery success rate by channel", _each(k.delivery_by_channel, rate_text)),
        ("5", "Gate B failure rate", rate_text(k.gate_b_failure)),
        ("6", "runs per template version", _each({f"{t} v{n}": c for (t, n), c in usage.runs_by_version.items()}, str)),
        ("6", "runs of deprecated versions", str(usage.deprecated_version_runs)),
        ("6", "templates without runs", ", ".join(usage.templates_without_runs) or "-"),
        ("7", "link access denials by reason", _each(k.denials_by_reason, str)),
        ("8", "policy violation attempts",
         f"{v.total} (refused distributions {v.refused_distributions}, tenant mismatches {v.tenant_mismatches}, "
         f"denied sensitive downloads {v.denied_sensitive_downloads})"),
        ("9", "p95 runtime by template", _each(k.p95_runtime_by_template, lambda s: f"{s:.1f}s")),
        ("10", "complete provenance", rate_text(k.provenance_complete)),
    ]
