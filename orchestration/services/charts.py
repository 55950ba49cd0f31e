"""Chart definitions: create, list, show, update (a new version), validate, activate, deprecate,
archive and render. Each use case owns its transaction and is audited with the request's
correlation id.

A chart belongs to its source's tenant. Each version records the source version it was
validated against; when the source moves on (a new definition version, a field removed or
restricted in the registry, a new template version), the chart has drifted: it shows why and
does not render until it is validated again (a new version bound to the source as it is now)
and activated again by an approver.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pydantic import ValidationError

from orchestration.access import audit
from orchestration.access.tokens import Authenticated
from orchestration.catalog import chart_store as store
from orchestration.catalog.chart_definitions import ChartCreate, ChartDefinition, ChartSpec, ChartUpdate, ChartVersion
from orchestration.catalog.definitions import RunParameters
from orchestration.errors import Conflict, Denied, Invalid, NotFound
from orchestration.exports import charts as drawing
from orchestration.exports.chart_data import ChartData, pivot
from orchestration.exports.sections import ChartSpec as DrawnChart
from orchestration.governance.versioned import Retirement
from orchestration.services import chart_sources as sources
from orchestration.services import definition_checks as checks
from orchestration.services import versioned_lifecycle as lifecycle
from orchestration.services.definition_runs import ConsentOverride
from orchestration.services.versioned_lifecycle import RETIREMENTS, Draft, Kind

PAGE_MAX = lifecycle.PAGE_MAX


@dataclass(frozen=True)
class ChartView:
    chart: ChartDefinition
    version: ChartVersion
    drift: str | None  # why the version renders no more, or None


@dataclass(frozen=True)
class Rendered:
    chart_id: str
    version: int
    chart_type: str
    data: ChartData
    svg: str
    generated_at: dt.datetime
    rows: int


@dataclass(frozen=True)
class ChartValidation:
    valid: bool
    errors: tuple[str, ...]
    view: ChartView


KIND = Kind(table=store.TABLE, noun="chart definition", target="chart", audit_name="chart", stops=RETIREMENTS)


def _view(conn, caller: Authenticated, chart: ChartDefinition, version: ChartVersion | None = None) -> ChartView:
    version = version or store.get_version(conn, chart.chart_id, chart.current_version)
    shown = chart.active_version if chart.active_version else chart.current_version
    drift = None
    if chart.status != "archived":
        pinned = version if version.version == shown else store.get_version(conn, chart.chart_id, shown)
        drift = sources.drift(conn, caller, pinned.spec, chart.tenant_id, pinned.source_version, pinned.source_hash)
    return ChartView(chart, version, drift)


def _draft(spec: ChartSpec, bound: sources.Bound, **details: object) -> Draft:
    """A version of `spec` bound to the source version it was validated against."""
    return Draft(spec, {"source_kind": spec.source_kind, "source_id": spec.source_id, "source_version": bound.version,
                        "source_hash": bound.validation_hash}, details)


def _source(spec: ChartSpec, bound: sources.Bound) -> str:
    return f"{spec.source_kind} {spec.source_id} v{bound.version}"


def create_chart(conn, caller: Authenticated, body: ChartCreate, *, correlation_id: str | None = None,
                 now: dt.datetime | None = None) -> ChartView:
    spec = ChartSpec.model_validate(body.model_dump(exclude={"tenant_id"}))
    tenant_id = body.tenant_id or sources.tenant_of(conn, caller, spec) or checks.tenant_for_new(caller, None, "chart")
    if not caller.principal.member_of(tenant_id):
        raise NotFound(f"no tenant {tenant_id!r} for {caller.principal.principal_id}")
    checks.authorize(conn, caller, "define", tenant_id, f"chart {spec.chart_name!r}", correlation_id)

    def draft() -> Draft:
        bound = sources.bind(conn, caller, spec, tenant_id, correlation_id)
        return _draft(spec, bound, chart_name=spec.chart_name, source=_source(spec, bound))

    chart, version = lifecycle.create(conn, caller, KIND, tenant_id, draft, correlation_id=correlation_id,
                                      now=now or lifecycle.utcnow())
    return ChartView(chart, version, None)


def list_charts(conn, caller: Authenticated, *, status: str | None = None, cursor: str | None = None,
                limit: int = 50) -> tuple[list[ChartView], str | None]:
    with conn:
        found, next_cursor = lifecycle.page(conn, KIND, caller.principal, status=status, cursor=cursor, limit=limit)
        return [_view(conn, caller, c, v) for c, v in found], next_cursor


def get_chart(conn, caller: Authenticated, chart_id: str, version: int | None = None) -> ChartView:
    with conn:
        return _view(conn, caller, *lifecycle.shown(conn, KIND, caller.principal, chart_id, version))


def update_chart(conn, caller: Authenticated, chart_id: str, changes: ChartUpdate, *, if_match: str | None = None,
                 correlation_id: str | None = None, now: dt.datetime | None = None) -> ChartView:
    """A new version, validated against the source as it is now; the active one renders until it is activated."""
    given = changes.model_dump(exclude_unset=True)  # unset, not None: `series: null` drops the series

    def revise(chart: ChartDefinition, current: ChartVersion) -> Draft:
        try:
            spec = ChartSpec.model_validate({**current.spec.model_dump(), **given})
        except ValidationError as exc:  # the change breaks a rule of the whole chart (e.g. a pie with series)
            first = exc.errors()[0]
            raise Invalid(f"{'.'.join(str(p) for p in first['loc']) or 'chart'}: {first['msg']}") from None
        bound = sources.bind(conn, caller, spec, chart.tenant_id, correlation_id)
        return _draft(spec, bound, source=_source(spec, bound))

    chart, version = lifecycle.update(conn, caller, KIND, chart_id, given, revise, if_match=if_match,
                                      correlation_id=correlation_id, now=now or lifecycle.utcnow())
    return ChartView(chart, version, None)


def validate_chart(conn, caller: Authenticated, chart_id: str, *, correlation_id: str | None = None,
                   now: dt.datetime | None = None) -> ChartValidation:
    """Check the newest version against the source as it is now. When it fits a source that has
    moved on, it is saved as a new version bound to that source version (activate it to render)."""
    now = now or lifecycle.utcnow()
    lifecycle.changeable(conn, caller, KIND, chart_id, "define", correlation_id)
    with conn:
        chart = lifecycle.locked(conn, KIND, chart_id, None)
        current = store.get_version(conn, chart_id, chart.current_version)
        try:
            bound = sources.bind(conn, caller, current.spec, chart.tenant_id, correlation_id)
        except (Invalid, Denied, NotFound) as exc:
            errors: tuple[str, ...] = (str(exc),)
        else:
            errors = ()
            if (bound.version, bound.validation_hash) != (current.source_version, current.source_hash):
                chart, current = lifecycle.append_version(conn, caller, KIND, chart, _draft(current.spec, bound), now)
        lifecycle.record(conn, caller, KIND, "validate", chart_id, chart.tenant_id, correlation_id,
                         outcome="failed" if errors else "succeeded", version=current.version, errors=list(errors))
    with conn:
        view = _view(conn, caller, chart, current)
    return ChartValidation(not errors, errors, view)


def activate_chart(conn, caller: Authenticated, chart_id: str, *, correlation_id: str | None = None,
                   now: dt.datetime | None = None) -> ChartView:
    """An approver who did not write the newest version, and a version that fits its source now."""

    def fits_source(chart: ChartDefinition, version: ChartVersion) -> None:
        drift = sources.drift(conn, caller, version.spec, chart.tenant_id, version.source_version, version.source_hash)
        if drift:
            raise Conflict(f"chart {chart_id} v{version.version} does not fit its source: {drift}; "
                           "validate it (POST .../validate) or PATCH it first")

    chart, version = lifecycle.activate(conn, caller, KIND, chart_id, fits_source, correlation_id=correlation_id,
                                        now=now or lifecycle.utcnow())
    return ChartView(chart, version, None)


def retire_chart(conn, caller: Authenticated, chart_id: str, status: str, reason: Retirement, *,
                 correlation_id: str | None = None, now: dt.datetime | None = None) -> ChartView:
    chart = lifecycle.stop(conn, caller, KIND, chart_id, status, reason, correlation_id=correlation_id,
                           now=now or lifecycle.utcnow())
    with conn:
        return _view(conn, caller, chart)


def render_chart(conn, caller: Authenticated, chart_id: str, parameters: RunParameters, *, fmt: str = "json",
                 include_withdrawn: ConsentOverride | None = None, correlation_id: str | None = None,
                 now: dt.datetime | None = None) -> Rendered:
    """The active version's data and SVG, its source read under the requester's rules as a run
    reads it. A drifted chart is refused (409) with the reason. `fmt` names what the adapter
    sends (json, svg): anything but json is an export and audited as one."""
    chart = lifecycle.visible(conn, KIND, caller.principal, chart_id)
    checks.authorize(conn, caller, "run", chart.tenant_id, f"chart {chart_id}", correlation_id)
    try:
        if chart.active_version is None or chart.status not in ("active", "deprecated"):
            raise Conflict(f"chart definition {chart_id} is {chart.status}: an approver activates it before it renders")
        version = store.get_version(conn, chart_id, chart.active_version)
        with conn:
            drift = sources.drift(conn, caller, version.spec, chart.tenant_id, version.source_version,
                                  version.source_hash)
        if drift:
            raise Conflict(f"chart definition {chart_id} has drifted: {drift}; validate it and activate it again")
        bound = sources.bind(conn, caller, version.spec, chart.tenant_id, correlation_id)
        read = sources.read(conn, caller, version.spec, chart.tenant_id, bound, parameters,
                            include_withdrawn=include_withdrawn, correlation_id=correlation_id)
    except (Conflict, Invalid) as exc:
        audit.record_now(conn, actor=checks.who(caller), action="chart.render", target=chart_id, outcome="failed",
                         tenant_id=chart.tenant_id, correlation_id=correlation_id, details={"reason": str(exc)})
        raise
    spec = version.spec
    names = [c.name for c in read.columns]
    labels = {bound.resolved[y]: y for y in spec.y_axis}
    data = pivot(names, read.rows, x=bound.resolved[spec.x_axis], y=[bound.resolved[y] for y in spec.y_axis],
                 split=[bound.resolved[c] for c in (*([spec.series] if spec.series else []), *spec.group_by)],
                 labels={c.name: c.label or labels.get(c.name, c.name) for c in read.columns})
    x_type = next(c.type for c in read.columns if c.name == bound.resolved[spec.x_axis])
    drawn = DrawnChart(section="chart", kind=spec.chart_type, x="x", y=tuple(c.name for c in data.columns(x_type)[1:]),
                       title=spec.chart_name)
    svg = drawing.render_svg(drawn, data.columns(x_type), data.rows())
    generated_at = now or lifecycle.utcnow()
    audit.record_now(conn, actor=checks.who(caller), action="chart.render" if fmt == "json" else "chart.export",
                     target=chart_id, outcome="succeeded", tenant_id=chart.tenant_id, correlation_id=correlation_id,
                     details={"version": version.version, "format": fmt, "rows": len(read.rows),
                              "source": f"{spec.source_kind} {spec.source_id} v{bound.version}",
                              **({"include_withdrawn": read.consent_override} if read.consent_override else {})})
    return Rendered(chart_id, version.version, spec.chart_type, data, svg, generated_at, len(read.rows))
