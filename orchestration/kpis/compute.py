"""The ten KPIs of Appendix B from facts already read (pure: no database, no clock).

Definitions (what the table and the tests mean by each number):
- run success rate: completed (or since expired) runs / ended runs (completed, expired, failed,
  cancelled); runs still queued or running are not counted.
- failure rate by class: ended runs of that class / ended runs.
- scheduler lag: tick -> started (runs a schedule fired) and started -> published (completed
  runs), p50 / p95 / max in seconds; percentiles by nearest rank.
- delivery success rate by channel: sent / deliveries with an outcome (sent, failed_transient,
  failed_permanent); pending and sending rows have none yet.
- Gate B failure rate: runs whose gate failed / runs whose gate ran.
- template usage: runs per template version; runs of a version created after it was
  deprecated; runnable (approved) templates without a run in the window.
- access denials by reason: denied download-link requests, by kind of refusal (kpis/denials.py).
- policy violation attempts: refused distributions, tenant mismatches, denied link requests
  for confidential or restricted runs.
- p95 runtime by template: started -> ended of completed runs.
- provenance: published runs whose manifest is complete and that pass `provenance verify` / published runs.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestration.kpis import denials
from orchestration.kpis.facts import DeliveryFact, Denial, TemplateVersionFact, Violation
from orchestration.runs.run_record import RunRecord

SUCCESS_STATES = ("completed", "expired")
ENDED_STATES = ("completed", "expired", "failed", "cancelled")
DECIDED_DELIVERY = ("sent", "failed_transient", "failed_permanent")
SENSITIVE = ("confidential", "restricted")


@dataclass(frozen=True)
class Rate:
    """numerator / denominator; `value` is None when there is nothing to divide by."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass(frozen=True)
class Spread:
    """p50 / p95 / max of some durations in seconds (None when there are none)."""

    count: int
    p50: float | None
    p95: float | None
    max: float | None

    @classmethod
    def of(cls, seconds: Iterable[float]) -> Spread:
        values = sorted(seconds)
        if not values:
            return cls(0, None, None, None)
        return cls(len(values), percentile(values, 50), percentile(values, 95), values[-1])


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class TemplateUsage:
    runs_by_version: Mapping[tuple[str, int], int]
    deprecated_version_runs: int
    templates_without_runs: tuple[str, ...]


@dataclass(frozen=True)
class Violations:
    refused_distributions: int
    tenant_mismatches: int
    denied_sensitive_downloads: int

    @property
    def total(self) -> int:
        return self.refused_distributions + self.tenant_mismatches + self.denied_sensitive_downloads


@dataclass(frozen=True)
class KpiSet:
    tenant_id: str | None  # None: the platform
    since: dt.datetime
    until: dt.datetime
    run_success: Rate
    failure_by_class: Mapping[str, Rate]
    lag_tick_to_start: Spread
    lag_start_to_published: Spread
    delivery_by_channel: Mapping[str, Rate]
    gate_b_failure: Rate
    template_usage: TemplateUsage
    denials_by_reason: Mapping[str, int]
    violations: Violations
    p95_runtime_by_template: Mapping[str, float]
    provenance_complete: Rate


@dataclass(frozen=True)
class Facts:
    runs: list[RunRecord]
    deliveries: list[DeliveryFact]
    denials: list[Denial]
    violations: list[Violation]
    template_versions: list[TemplateVersionFact]
    provenance_gaps: Mapping[str, list[str]]  # run_id of each published run -> what is missing


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def template_usage(runs: list[RunRecord], versions: list[TemplateVersionFact]) -> TemplateUsage:
    by_version = Counter((r.template_key, r.template_version) for r in runs)
    deprecated = {(v.template_key, v.version): v.deprecated_at for v in versions if v.deprecated_at is not None}
    after_deprecation = sum(1 for r in runs if (r.template_key, r.template_version) in deprecated
                            and r.created_at >= deprecated[(r.template_key, r.template_version)])
    run_keys = {r.template_key for r in runs}
    runnable = {v.template_key for v in versions if v.state == "approved"}
    return TemplateUsage(dict(sorted(by_version.items())), after_deprecation, tuple(sorted(runnable - run_keys)))


def compute(facts: Facts, *, tenant_id: str | None, since: dt.datetime, until: dt.datetime) -> KpiSet:
    ended = [r for r in facts.runs if r.state in ENDED_STATES]
    classes = Counter(r.failure_class for r in ended if r.failure_class)
    gated = [r for r in facts.runs if r.gate_passed is not None]
    runtimes: dict[str, list[float]] = defaultdict(list)
    for r in ended:
        seconds = _seconds(r.started_at, r.ended_at)
        if r.state in SUCCESS_STATES and seconds is not None:
            runtimes[r.template_key].append(seconds)
    decided = [d for d in facts.deliveries if d.status in DECIDED_DELIVERY]
    channels = sorted({d.channel for d in decided})
    lag_tick = [s for r in facts.runs if (s := _seconds(r.tick_at, r.started_at)) is not None]
    lag_publish = [s for r in facts.runs if (s := _seconds(r.started_at, r.published_at)) is not None]
    return KpiSet(
        tenant_id=tenant_id, since=since, until=until,
        run_success=Rate(sum(r.state in SUCCESS_STATES for r in ended), len(ended)),
        failure_by_class={c: Rate(n, len(ended)) for c, n in sorted(classes.items())},
        lag_tick_to_start=Spread.of(lag_tick),
        lag_start_to_published=Spread.of(lag_publish),
        delivery_by_channel={c: Rate(sum(d.channel == c and d.status == "sent" for d in decided),
                                     sum(d.channel == c for d in decided)) for c in channels},
        gate_b_failure=Rate(sum(not r.gate_passed for r in gated), len(gated)),
        template_usage=template_usage(facts.runs, facts.template_versions),
        denials_by_reason=dict(sorted(Counter(denials.category(d.reason) for d in facts.denials).items())),
        violations=Violations(
            refused_distributions=sum(v.kind == "refused_distribution" for v in facts.violations),
            tenant_mismatches=sum(v.kind == "tenant_mismatch" for v in facts.violations),
            denied_sensitive_downloads=sum(d.sensitivity in SENSITIVE for d in facts.denials)),
        p95_runtime_by_template={t: percentile(sorted(v), 95) for t, v in sorted(runtimes.items())},
        provenance_complete=Rate(sum(not g for g in facts.provenance_gaps.values()), len(facts.provenance_gaps)),
    )
