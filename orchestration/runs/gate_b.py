"""Gate B: Great Expectations suites run on a run's snapshot before anything is published.

Suites are JSON in `expectations/`: the shared suite applies to every section, the template's
suite to the sections each expectation names in `meta.sections`. GX marks a suite failed on a
warning too, so the gate result is derived here from the critical expectations only.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestration.catalog.templates import Template
from orchestration.exports import SectionSnapshot
from orchestration.runs.request import ReportRequest
from orchestration.settings import EXPECTATIONS_DIR

SHARED_SUITE = "shared"

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


class SuiteError(ValueError):
    """A suite file that is missing or invalid."""


@dataclass
class Outcome:
    section: str
    expectation: str
    column: str | None
    severity: str
    success: bool
    check: str
    observed: Any = None

    def line(self) -> str:
        where = f"{self.section}.{self.column}" if self.column else self.section
        return f"{self.severity} {self.expectation} on {where} ({self.check}): observed {self.observed!r}"


@dataclass
class GateResult:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(o.success for o in self.outcomes if o.severity == "critical")

    @property
    def critical_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.severity == "critical" and not o.success]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.severity != "critical" and not o.success]

    @property
    def met(self) -> int:
        return sum(1 for o in self.outcomes if o.success)

    def summary(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "evaluated": len(self.outcomes),
            "critical_failures": [o.line() for o in self.critical_failures],
            "warnings": [o.line() for o in self.warnings],
        }

    def diagnosis(self) -> str:
        failures = self.critical_failures
        if not failures:
            return "Gate B passed"
        more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
        return f"Gate B failed: {failures[0].line()}{more}"


def load_suite(name: str, root: Path = EXPECTATIONS_DIR) -> dict[str, Any]:
    path = root / f"{name}.json"
    try:
        suite = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise SuiteError(f"Gate B suite {name!r} not found at {path}") from exc
    except json.JSONDecodeError as exc:
        raise SuiteError(f"Gate B suite {path} is not valid JSON: {exc}") from exc
    if suite.get("name") != name or not isinstance(suite.get("expectations"), list):
        raise SuiteError(f"Gate B suite {path} must have name {name!r} and a list of expectations")
    for i, exp in enumerate(suite["expectations"]):
        if exp.get("severity") not in ("critical", "warning", "info"):
            raise SuiteError(f"{path}: expectation {i} needs severity critical, warning or info")
        sections = exp.get("meta", {}).get("sections")
        if sections != "*" and not (isinstance(sections, list) and sections):
            raise SuiteError(f"{path}: expectation {i} needs meta.sections ('*' or a list)")
    return suite


def _expectations_for(section: str, suites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    chosen = []
    for suite in suites:
        for exp in suite["expectations"]:
            sections = exp["meta"]["sections"]
            if sections == "*" or section in sections:
                chosen.append(exp)
    return chosen


def parameters_for(template: Template, request: ReportRequest, section_name: str) -> dict[str, Any]:
    section = template.section(section_name)
    return {
        "tenant_values": [request.tenant_id],
        "min_rows": 1 if section.mandatory else 0,
        "max_rows": section.max_rows,
        "window_days": (request.window_end - request.window_start).days,
    }


def run_gate_b(
    template: Template,
    request: ReportRequest,
    sections: dict[str, SectionSnapshot],
    *,
    connection_string: str,
    suites_root: Path = EXPECTATIONS_DIR,
) -> GateResult:
    """Validate every section snapshot; returns outcomes of every expectation evaluated."""
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*generic SQLDatasource.*")
    suites = [load_suite(SHARED_SUITE, suites_root), load_suite(template.expectation_suite, suites_root)]
    result = GateResult(outcomes=_missing_sections(template, sections))
    with _datasource_lock:
        datasource = _snapshot_datasource(connection_string)
        try:
            for name, snap in sections.items():
                result.outcomes += _validate_section(datasource, template, request, name, snap, suites)
        except Exception:
            _datasources.pop(connection_string, None)  # a broken engine is not handed to the next run
            raise
    return result


def _validate_section(datasource, template: Template, request: ReportRequest, name: str, snap: SectionSnapshot,
                      suites: list[dict[str, Any]]) -> list[Outcome]:
    schema, table = (part.strip('"') for part in snap.table.split(".", 1))
    # The asset is this run's and this section's only: added, validated, removed, so a reused
    # datasource holds no asset between runs and two runs never share one.
    asset_name = f"{name}-{uuid.uuid4().hex}"
    asset = datasource.add_table_asset(asset_name, table_name=table, schema_name=schema)
    try:
        batch = asset.add_batch_definition_whole_table("whole").get_batch()
        suite = _section_suite(f"{template.key}.{name}", _expectations_for(name, suites))
        validation = batch.validate(suite, expectation_parameters=parameters_for(template, request, name))
    finally:
        datasource.delete_asset(asset_name)
    return [_outcome(name, res) for res in validation.results]


def _missing_sections(template: Template, sections: dict[str, SectionSnapshot]) -> list[Outcome]:
    """A section without a snapshot fails the gate when it is mandatory."""
    return [
        Outcome(section.name, "section_present", None, "critical", not section.mandatory,
                "mandatory sections present", "missing")
        for section in template.sections if section.name not in sections
    ]


# One ephemeral GX context and SQL datasource per process and database, built by the first gate
# and reused by every later one: building them (and the engine's first connection) is per-process
# work, not per-run work. GX contexts are not thread-safe: gates in one process take turns.
_datasources: dict[str, Any] = {}
_datasource_lock = threading.Lock()


def _snapshot_datasource(connection_string: str):
    found = _datasources.get(connection_string)
    if found is None:
        found = _datasources[connection_string] = _new_datasource(connection_string)
    return found


def _new_datasource(connection_string: str):
    # Great Expectations is imported when a gate runs, not whenever the run engine is imported.
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    # The generic SQL datasource: the Postgres one insists on a TCP host, the embedded server has a socket.
    return context.data_sources.add_sql("snapshot", connection_string=connection_string)


def _section_suite(name: str, configs: list[dict[str, Any]]):
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    return gx.ExpectationSuite(
        name=name,
        expectations=[
            ExpectationConfiguration(
                type=e["type"], kwargs=e["kwargs"], meta=e.get("meta", {}), severity=e["severity"]
            ).to_domain_obj()
            for e in configs
        ],
    )


def _outcome(section: str, res) -> Outcome:
    """One expectation's result as the run records it: what was checked and what was observed."""
    config = res.expectation_config
    observed = res.result.get("observed_value")
    if observed is None and not res.success:
        observed = res.result.get("partial_unexpected_list") or res.result.get("unexpected_count")
    if res.exception_info and res.exception_info.get("raised_exception"):
        observed = res.exception_info.get("exception_message")
    severity = getattr(config.severity, "value", config.severity)
    return Outcome(
        section=section,
        expectation=config.type,
        column=config.kwargs.get("column"),
        severity=str(severity),
        success=bool(res.success),
        check=(config.meta or {}).get("check", ""),
        observed=_jsonable(observed),
    )


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)
