"""Gate B: Great Expectations suites run on a run's snapshot before anything is published.

Suites are JSON in `expectations/`: the shared suite applies to every section, the template's
suite to the sections each expectation names in `meta.sections`. GX marks a suite failed on a
warning too, so the gate result is derived here from the critical expectations only.
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestration.catalog.templates import Template
from orchestration.exports import SectionSnapshot
from orchestration.runs.gate_b_gx import IN_MEMORY_TYPES, GxSession, named_columns
from orchestration.runs.request import ReportRequest
from orchestration.settings import EXPECTATIONS_DIR

SHARED_SUITE = "shared"


class SuiteError(ValueError):
    """A suite file that is missing or invalid."""


@dataclass(frozen=True)
class _SuiteFile:
    """A suite file as one gate read it; its text is part of the cache key of the suites built from it."""

    name: str
    path: Path
    text: str


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
    return _parse_suite(_read_suite(name, root))


def _read_suite(name: str, root: Path) -> _SuiteFile:
    path = root / f"{name}.json"
    try:
        return _SuiteFile(name, path, path.read_text())
    except FileNotFoundError as exc:
        raise SuiteError(f"Gate B suite {name!r} not found at {path}") from exc


def _parse_suite(file: _SuiteFile) -> dict[str, Any]:
    name, path = file.name, file.path
    try:
        suite = json.loads(file.text)
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
    files = (_read_suite(SHARED_SUITE, suites_root), _read_suite(template.expectation_suite, suites_root))
    result = GateResult(outcomes=_missing_sections(template, sections))
    with _session_lock:
        session = _session(connection_string)
        try:
            for name, snap in sections.items():
                suite = _section_suite(template.key, name, files)
                result.outcomes += _validate_section(session, suite, parameters_for(template, request, name), snap)
        except Exception:
            _sessions.pop(connection_string, None)  # a broken engine is not handed to the next run
            raise
    return result


def _validate_section(session: GxSession, suite: SectionSuite, parameters: dict[str, Any],
                      snap: SectionSnapshot) -> list[Outcome]:
    """The quick pass; a section with anything unmet is validated again the full way, whose
    results are the ones recorded (gate_b_gx explains both)."""
    quick = session.validate_quick(snap, suite.gx, parameters, columns=suite.columns, in_memory=suite.in_memory)
    if all(res.success for res in quick):
        return [_outcome(snap.name, res, suite) for res in quick]
    return [_outcome(snap.name, res, suite) for res in session.validate_table(snap, suite.gx, parameters)]


def _missing_sections(template: Template, sections: dict[str, SectionSnapshot]) -> list[Outcome]:
    """A section without a snapshot fails the gate when it is mandatory."""
    return [
        Outcome(section.name, "section_present", None, "critical", not section.mandatory,
                "mandatory sections present", "missing")
        for section in template.sections if section.name not in sections
    ]


# One GX session (context, SQL datasource, dataframe asset) per process and database, built by
# the first gate and reused by every later one. GX contexts are not thread-safe: gates in one
# process take turns.
_sessions: dict[str, GxSession] = {}
_session_lock = threading.Lock()


def _session(connection_string: str) -> GxSession:
    found = _sessions.get(connection_string)
    if found is None:
        found = _sessions[connection_string] = GxSession(connection_string)
    return found


@dataclass(frozen=True)
class SectionSuite:
    """The expectations that apply to one section, as a GX suite, the columns they read, and the
    check text of each (its `meta.check`, by the position GX's expectation carries)."""

    gx: Any
    columns: frozenset[str] | None
    checks: tuple[str, ...]
    in_memory: bool  # every expectation is of a type the in-memory quick pass may decide

    def check_of(self, config) -> str:
        return self.checks[config.meta["i"]] if config.meta and "i" in config.meta else ""


@functools.lru_cache(maxsize=1024)
def _section_suite(template_key: str, section: str, files: tuple[_SuiteFile, ...]) -> SectionSuite:
    """Built once per section and per content of its suite files: the files are read by every
    gate (cheap) and are part of the key, so a suite file that changes is parsed again; parsing
    and building GX objects per section is what is saved."""
    suites = [_parse_suite(f) for f in files]
    configs = _expectations_for(section, suites)
    return SectionSuite(_gx_suite(f"{template_key}.{section}", configs), named_columns(configs),
                        tuple(e.get("meta", {}).get("check", "") for e in configs),
                        all(e["type"] in IN_MEMORY_TYPES for e in configs))


def _gx_suite(name: str, configs: list[dict[str, Any]]):
    """GX's expectations carry only their position in `configs` as meta (`i`, to find their meta
    again): GX rebuilds every expectation's configuration dozens of times per validation, and
    copying the whole meta each time was a sixth of a section's CPU time."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    return gx.ExpectationSuite(
        name=name,
        expectations=[
            ExpectationConfiguration(
                type=e["type"], kwargs=e["kwargs"], severity=e["severity"], meta={"i": i}
            ).to_domain_obj()
            for i, e in enumerate(configs)
        ],
    )


def _outcome(section: str, res, suite: SectionSuite) -> Outcome:
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
        check=suite.check_of(config),
        observed=_jsonable(observed),
    )


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)
