"""Item 8: the KPI baseline report: the platform's ten KPIs for the period, checked against targets.

The standard template `reporting_kpis` (its PDF is the KPI baseline report with a trend chart per
KPI) is built on another branch; when a published run of it exists for the period,
services/evidence.py's `reporting_kpis_pdf` hook hands its PDF over and the pack includes it
beside this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestration.evidence.document import Document, generated_from, join, table
from orchestration.kpis import table as kpi_table
from orchestration.kpis.compute import KpiSet, Rate

TITLE = "KPI baseline report"
KPI_REPORT_TEMPLATE = "reporting_kpis"


@dataclass(frozen=True)
class Target:
    kpi: str
    at_least: float | None = None
    at_most: float | None = None

    def missed(self, rate: Rate) -> bool:
        value = rate.value
        if value is None:
            return False  # nothing to measure: no run, no delivery; said in the table, not a failure
        return (self.at_least is not None and value < self.at_least) or (self.at_most is not None and value > self.at_most)

    def describe(self) -> str:
        return f">= {self.at_least:.0%}" if self.at_least is not None else f"<= {self.at_most:.0%}"


# Signoff targets: what the platform commits to for a period. A KPI that misses one fails item 8.
RUN_SUCCESS = Target("run success rate", at_least=0.95)
GATE_B_FAILURE = Target("Gate B failure rate", at_most=0.05)
DELIVERY_SUCCESS = Target("delivery success rate (each channel)", at_least=0.95)
PROVENANCE = Target("complete provenance", at_least=1.0)


def checks(k: KpiSet) -> list[tuple[Target, str, Rate]]:
    """(target, what was measured, its rate) for every KPI with a target."""
    found = [(RUN_SUCCESS, "run success rate", k.run_success), (GATE_B_FAILURE, "Gate B failure rate", k.gate_b_failure),
             (PROVENANCE, "complete provenance", k.provenance_complete)]
    found += [(DELIVERY_SUCCESS, f"delivery success rate, {channel}", rate)
              for channel, rate in k.delivery_by_channel.items()]
    return found


def document(k: KpiSet, period: str, *, template_pdf: str | None = None) -> Document:
    measured = checks(k)
    missed = [f"{label} {kpi_table.rate_text(rate)} misses its target {target.describe()}"
              for target, label, rate in measured if target.missed(rate)]
    markdown = join(
        f"# {TITLE}",
        generated_from("kpis/compute.py", "control schema (runs, deliveries, link requests, audit log)",
                       "the artifact store (manifests)"),
        f"The platform's KPIs (Appendix B) for {period}: "
        f"{k.since:%Y-%m-%d %H:%M} UTC to {k.until:%Y-%m-%d %H:%M} UTC.",
        table(["#", "KPI", "value"], kpi_table.rows(k)),
        "## Targets",
        table(["KPI", "value", "target", "met"],
              [(label, kpi_table.rate_text(rate), target.describe(),
                "no data" if rate.value is None else ("no" if target.missed(rate) else "yes"))
               for target, label, rate in measured]),
        f"## The `{KPI_REPORT_TEMPLATE}` report",
        f"Included as `{template_pdf}`." if template_pdf
        else f"No published `{KPI_REPORT_TEMPLATE}` run for {period} was found; the table above is the baseline.",
    )
    return Document(8, "kpi_baseline_report", TITLE, markdown, "failing" if missed else "ok", tuple(missed))
