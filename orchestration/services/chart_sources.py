"""What a chart reads: its source (a saved report definition or an approved query template),
the columns it offers this requester now, and its rows, read the way a run reads them.

A definition's rows come through `definition_runs.read_rows` (validated against the registry,
compiled for the requester's clearance and masking, read as report_reader under the tenant,
verticals, regions and consent of the run's scope); a template's through `snapshot.read_section`
(the section's guarded SQL in one report transaction of the tenant). There is no other path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from orchestration.access import clearance, policy
from orchestration.access.tokens import Authenticated
from orchestration.catalog import definition_store
from orchestration.catalog.chart_definitions import ChartSpec
from orchestration.catalog.definitions import Definition, DefinitionVersion, RunParameters
from orchestration.catalog.templates import SectionDef, Template
from orchestration.db import warehouse
from orchestration.errors import Conflict, Denied, Invalid, NotFound
from orchestration.governance import definition_lifecycle, lifecycle, versions
from orchestration.registry.builder import NUMERIC
from orchestration.runs import snapshot
from orchestration.runs.periods import utc_today
from orchestration.runs.request import ReportRequest
from orchestration.services import definition_checks as checks
from orchestration.services import definition_runs

MAX_ROWS = 5000  # a chart draws aggregates; a source that returns more is refused, not cut


@dataclass(frozen=True)
class SourceColumn:
    name: str
    type: str
    label: str | None = None


@dataclass(frozen=True)
class Bound:
    """The source as a chart version is validated against it: its version, its validation hash
    (definitions), its columns, and the chart's column names resolved to output columns."""

    label: str
    version: int
    validation_hash: str | None
    columns: tuple[SourceColumn, ...]
    resolved: dict[str, str]  # chart column name -> output column name
    section: str | None = None  # templates: the section the chart reads


@dataclass(frozen=True)
class Rows:
    columns: tuple[SourceColumn, ...]
    rows: list[tuple]
    consent_override: str | None = None


def _roles(spec: ChartSpec) -> list[tuple[str, str]]:
    named = [("x_axis", spec.x_axis), *(("y_axis", y) for y in spec.y_axis)]
    named += [("series", spec.series)] if spec.series else []
    return named + [("group_by", g) for g in spec.group_by]


def _resolve(spec: ChartSpec, label: str, columns: tuple[SourceColumn, ...],
             aliases: dict[str, str]) -> dict[str, str]:
    """Each chart column as an output column of the source, or Invalid naming the bad one."""
    by_name = {c.name: c for c in columns}
    accepted = {**{c.name: c.name for c in columns}, **aliases}
    resolved = {}
    for role, name in _roles(spec):
        if name not in accepted:
            raise Invalid(f"{role} {name!r}: not a field or alias of {label} "
                          f"(its columns: {', '.join(sorted(accepted))})")
        resolved[name] = accepted[name]
        if role == "y_axis" and by_name[accepted[name]].type not in NUMERIC | {"double precision", "real"}:
            raise Invalid(f"y_axis {name!r}: a {by_name[accepted[name]].type} column cannot be drawn as a value")
    return resolved


# -- definitions ------------------------------------------------------------------------------

def tenant_of(conn, caller: Authenticated, spec: ChartSpec) -> str | None:
    """A definition source's tenant, when the caller may see it (a chart belongs to its source's tenant)."""
    if spec.source_kind != "definition":
        return None
    definition = definition_store.get(conn, str(spec.source_report_definition_id))
    return definition.tenant_id if definition and caller.principal.member_of(definition.tenant_id) else None


def definition_of(conn, caller: Authenticated, spec: ChartSpec, tenant_id: str) -> Definition:
    definition = definition_store.get(conn, str(spec.source_report_definition_id))
    if definition is None or definition.tenant_id != tenant_id or not caller.principal.member_of(tenant_id):
        raise NotFound(f"no report definition {spec.source_report_definition_id}")
    return definition


def _bind_definition(conn, caller: Authenticated, spec: ChartSpec, definition: Definition) -> Bound:
    version = definition_store.get_version(conn, definition.definition_id, definition.current_version)
    label = f"report definition {definition.definition_id} v{version.version}"
    filtered = version.spec.model_copy(update={"filters": (*version.spec.filters, *spec.filters)})
    _, compiled = checks.compile_spec(conn, clearance.viewer_for(caller.principal), filtered, definition.tenant_id)
    columns = tuple(SourceColumn(c.name, c.type) for c in compiled.columns)
    several = len(version.spec.entity_ids) > 1
    aliases = {q: (q.replace(".", "__") if several else q.split(".", 1)[1]) for q in version.spec.fields}
    return Bound(label, version.version, version.validation_hash, columns, _resolve(spec, label, columns, aliases))


def _read_definition(conn, caller: Authenticated, spec: ChartSpec, definition: Definition, source_version: int,
                     parameters: RunParameters, include_withdrawn, correlation_id: str | None) -> Rows:
    version = _runnable(conn, definition, source_version)
    preview, withdrawn = definition_runs.read_rows(conn, caller, definition, version, parameters, row_limit=MAX_ROWS,
                                                   include_withdrawn=include_withdrawn, extra_filters=spec.filters,
                                                   correlation_id=correlation_id)
    if preview.truncated:
        raise Conflict(f"the source returns more than {MAX_ROWS} rows: aggregate it (group_by and aggregates) "
                       "or narrow the window")
    return Rows(tuple(SourceColumn(c.name, c.type) for c in preview.columns), preview.rows, withdrawn)


def _runnable(conn, definition: Definition, source_version: int) -> DefinitionVersion:
    """The source version the chart was validated against, if it is the one runs use now."""
    try:
        active = definition_lifecycle.active_version(definition)
    except lifecycle.NotRunnable as exc:
        raise Conflict(f"the chart's source cannot run: {exc}") from None
    if active != source_version:
        raise Conflict(f"the chart was validated against v{source_version} of report definition "
                       f"{definition.definition_id}, but v{active} is the active one")
    return definition_store.get_version(conn, definition.definition_id, source_version)


# -- templates --------------------------------------------------------------------------------

def _template_key(spec: ChartSpec) -> tuple[str, int | None]:
    key, _, version = str(spec.source_template_id).partition("@")
    return key, int(version) if version else None


def _template(conn, spec: ChartSpec, tenant_id: str, version: int | None = None) -> Template:
    key, pinned = _template_key(spec)
    try:
        return versions.resolve(conn, key, version or pinned, tenant_id=tenant_id).template
    except (NotFound, Invalid) as exc:
        raise Invalid(f"source_template_id {spec.source_template_id}: {exc}") from None


def _section(spec: ChartSpec, template: Template) -> tuple[SectionDef, dict[str, str]]:
    """The one section holding every column the chart names (`column` or `section.column`)."""
    named = {n.split(".", 1)[0] for _, n in _roles(spec) if "." in n}
    for section in template.sections:
        if named - {section.name}:
            continue
        names = {c.name for c in section.columns}
        if all(n.split(".", 1)[-1] in names for _, n in _roles(spec)):
            return section, {f"{section.name}.{c}": c for c in names}
    # none holds them all: validate against the named (or first) section, which names the missing column
    first = next((s for s in template.sections if s.name in named), template.sections[0])
    return first, {f"{first.name}.{c.name}": c.name for c in first.columns}


def _bind_template(conn, spec: ChartSpec, tenant_id: str) -> Bound:
    template = _template(conn, spec, tenant_id)
    section, aliases = _section(spec, template)
    label = f"template {template.label}, section {section.name}"
    columns = tuple(SourceColumn(c.name, c.type, c.label) for c in section.columns)
    return Bound(label, template.version, template.content_hash, columns, _resolve(spec, label, columns, aliases),
                 section.name)


def _read_template(conn, caller: Authenticated, spec: ChartSpec, tenant_id: str, bound_version: int,
                   section_name: str, parameters: RunParameters, correlation_id: str | None) -> Rows:
    template = _template(conn, spec, tenant_id, bound_version)
    try:
        lifecycle.check_runnable(conn, template, trigger="manual")
    except lifecycle.NotRunnable as exc:
        raise Conflict(f"the chart's source cannot run: {exc}") from None
    principal = caller.principal
    policy.authorize(conn, principal.principal_id, "run", target=f"template {template.label}", tenant_id=tenant_id,
                     allowed_roles=template.roles.run, correlation_id=correlation_id)
    today = utc_today()
    start, end = parameters.half_open() or (today - dt.timedelta(days=definition_runs.DEFAULT_WINDOW_DAYS), today)
    # The requester's own verticals and regions narrow what the governed models return, as for a definition.
    request = ReportRequest(
        template_key=template.key, template_version=template.version, tenant_id=tenant_id, window_start=start,
        window_end=end, requester=principal.principal_id, formats=template.formats,
        verticals=tuple(sorted(principal.verticals)) if principal.verticals else None,
        geo_scopes=tuple(sorted(principal.geo_scopes)) if principal.geo_scopes else None)
    section = template.section(section_name)
    with warehouse.reader_connection() as reader:
        rows = snapshot.read_section(reader, template, section, request, limit=MAX_ROWS + 1)
    if len(rows) > MAX_ROWS:
        raise Conflict(f"section {section_name} returns more than {MAX_ROWS} rows for a chart; narrow the window")
    return Rows(tuple(SourceColumn(c.name, c.type, c.label) for c in section.columns), rows)


# -- both -------------------------------------------------------------------------------------

def bind(conn, caller: Authenticated, spec: ChartSpec, tenant_id: str, correlation_id: str | None) -> Bound:
    """Validate the chart against its source as this requester sees it now (Invalid names the problem)."""
    if spec.source_kind == "definition":
        try:
            definition = definition_of(conn, caller, spec, tenant_id)
        except NotFound as exc:
            raise Invalid(f"source_report_definition_id: {exc}") from None
        checks.authorize(conn, caller, "view", tenant_id, f"report definition {definition.definition_id}",
                         correlation_id)
        return _bind_definition(conn, caller, spec, definition)
    return _bind_template(conn, spec, tenant_id)


def drift(conn, caller: Authenticated, spec: ChartSpec, tenant_id: str, source_version: int,
          source_hash: str | None) -> str | None:
    """Why a chart version no longer matches its source, or None: the source has a new version,
    is gone or archived, or a field it uses was removed or restricted in the registry."""
    if spec.source_kind == "definition":
        definition = definition_store.get(conn, str(spec.source_report_definition_id))
        if definition is None or definition.status == "archived":
            return f"its source report definition {spec.source_report_definition_id} is archived"
        if definition.current_version != source_version:
            return (f"its source report definition {definition.definition_id} has a new version "
                    f"v{definition.current_version} (the chart was validated against v{source_version})")
        version = definition_store.get_version(conn, definition.definition_id, source_version)
        result = checks.check(conn, caller.principal, definition, version)
        if not result.valid:
            return "its source is not valid now: " + "; ".join(result.errors)
    try:
        bound = bind(conn, caller, spec, tenant_id, None)
    except (Invalid, Denied) as exc:
        return f"the chart no longer fits its source: {exc}"
    if spec.source_kind == "template" and (bound.version, bound.validation_hash) != (source_version, source_hash):
        return f"its source template has a new version (v{bound.version}; the chart was validated against v{source_version})"
    return None


def read(conn, caller: Authenticated, spec: ChartSpec, tenant_id: str, bound: Bound, parameters: RunParameters, *,
         include_withdrawn=None, correlation_id: str | None = None) -> Rows:
    if spec.source_kind == "definition":
        definition = definition_of(conn, caller, spec, tenant_id)
        return _read_definition(conn, caller, spec, definition, bound.version, parameters, include_withdrawn,
                                correlation_id)
    if include_withdrawn is not None:
        raise Invalid("include_withdrawn applies to charts of report definitions")
    return _read_template(conn, caller, spec, tenant_id, bound.version, str(bound.section), parameters,
                          correlation_id)
