"""The ten KPIs as one number each (pure): what a time series plots, e.g. the Dagster KPI asset's
materialization metadata. A KPI with a dimension (by class, channel, template) is summed or
taken at its worst; None when there is nothing to measure that day."""

from __future__ import annotations

from orchestration.kpis.compute import KpiSet, Rate


def _summed(rates: dict[str, Rate]) -> float | None:
    """Rates over different denominators (channels): the pooled rate."""
    return Rate(sum(r.numerator for r in rates.values()), sum(r.denominator for r in rates.values())).value


# name -> (KPI number in Appendix B, what it is); the order of the table
NAMES = {
    "run_success_rate": (1, "completed or expired runs / ended runs"),
    "failure_rate": (2, "ended runs with a failure class / ended runs (every class)"),
    "schedule_lag_p95_seconds": (3, "p95 of schedule tick to run start"),
    "delivery_success_rate": (4, "sent / decided deliveries, every channel"),
    "gate_b_failure_rate": (5, "runs whose Gate B failed / runs whose Gate B ran"),
    "deprecated_version_runs": (6, "runs of template versions created after their deprecation"),
    "access_denials": (7, "denied download-link requests, every reason"),
    "policy_violation_attempts": (8, "refused distributions + tenant mismatches + denied sensitive downloads"),
    "worst_p95_runtime_seconds": (9, "the highest p95 runtime of any template"),
    "provenance_complete_rate": (10, "published runs with complete, verified provenance / published runs"),
}


def headline(k: KpiSet) -> dict[str, float | None]:
    """The ten numbers, in NAMES order."""
    values: dict[str, float | None] = {
        "run_success_rate": k.run_success.value,
        # an ended run has at most one class: the class rates share the ended runs as denominator
        "failure_rate": Rate(sum(r.numerator for r in k.failure_by_class.values()), k.run_success.denominator).value,
        "schedule_lag_p95_seconds": k.lag_tick_to_start.p95,
        "delivery_success_rate": _summed(dict(k.delivery_by_channel)),
        "gate_b_failure_rate": k.gate_b_failure.value,
        "deprecated_version_runs": float(k.template_usage.deprecated_version_runs),
        "access_denials": float(sum(k.denials_by_reason.values())),
        "policy_violation_attempts": float(k.violations.total),
        "worst_p95_runtime_seconds": max(k.p95_runtime_by_template.values(), default=None),
        "provenance_complete_rate": k.provenance_complete.value,
    }
    return {name: values[name] for name in NAMES}
