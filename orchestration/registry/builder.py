"""The governed query builder: a report definition plus registry entries -> one SELECT, as a
sqlglot AST, with every value a bind parameter.

Identifiers come only from registry entries (which were checked against the dbt manifest);
nothing from the definition reaches the SQL text except through a registry lookup. Joins follow
only the paths the registry declares. A field the requester may not see is refused; a field it
may see only masked is masked in the SQL, so the value never leaves the database. Row-level
output (no aggregates) needs an explicit permission. Tenant isolation is not the builder's job:
the query runs as report_reader under row-level security, whatever it says.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass

from sqlglot import exp

from orchestration.access.clearance import CLASSIFICATION_ORDER, Viewer
from orchestration.catalog import sql_guard
from orchestration.catalog.definitions import DefinitionSpec, Filter
from orchestration.errors import Invalid
from orchestration.metrics import dbt_manifest
from orchestration.registry.entities import Entity, FieldSpec

NUMERIC = frozenset({"integer", "bigint", "numeric"})
ORDERED = NUMERIC | {"date", "timestamptz", "text"}
_COMPARE = {"eq": exp.EQ, "ne": exp.NEQ, "gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}


@dataclass(frozen=True)
class Window:
    start: dt.date  # inclusive
    end: dt.date  # exclusive


@dataclass(frozen=True)
class OutputColumn:
    name: str
    type: str
    classification: str
    masked: bool


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: dict[str, object]
    columns: tuple[OutputColumn, ...]


@dataclass(frozen=True)
class _Ref:
    alias: str
    entity: Entity
    spec: FieldSpec

    def column(self) -> exp.Column:
        return exp.column(self.spec.name, table=self.alias, quoted=True)


class _Params:
    """Bind parameters by name. For a run (`portable`), values are kept as JSON scalars (dates and
    timestamps as ISO text, which Postgres casts to the column's type), since they travel in the
    run's recorded request and are bound again when its snapshot is taken."""

    def __init__(self, *, portable: bool = False) -> None:
        self.values: dict[str, object] = {}
        self.portable = portable

    def bind(self, value: object) -> exp.Placeholder:
        name = f"p{len(self.values)}"
        if self.portable and isinstance(value, dt.date):
            value = value.isoformat()
        self.values[name] = value
        return exp.Placeholder(this=name)


def validation_hash(spec: DefinitionSpec, entities: list[Entity]) -> str:
    """Covers what a run depends on: the models, the joins and every field spec the definition uses."""
    used = _used_fields(spec)
    payload = {
        "definition": spec.model_dump(mode="json", exclude={"report_name", "description"}),
        "entities": [
            {"entity_id": e.entity_id, "data_source": e.data_source.model_dump(),
             "fields": [f.model_dump() for f in e.allowed_fields if f"{e.entity_name}.{f.name}" in used],
             "joins": [j.model_dump() for j in e.joins]}
            for e in entities
        ],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _used_fields(spec: DefinitionSpec) -> set[str]:
    used = {*spec.fields, *spec.group_by, *(f.field for f in spec.filters), *(a.field for a in spec.aggregates)}
    if spec.time_window:
        used.add(spec.time_window.field)
    return used


def unusable_fields(spec: DefinitionSpec, entities: list[Entity], viewer: Viewer) -> list[str]:
    """The fields the definition uses that this viewer cannot use now: removed from the registry,
    of an entity that is not active, or classified above the viewer's clearance (sorted)."""
    scope = _Scope([e for e in entities if e.status == "active"], viewer)
    unusable = []
    for qualified in sorted(_used_fields(spec)):
        try:
            scope.field(qualified, "field")
        except Invalid:
            unusable.append(qualified)
    return unusable


class _Scope:
    """The entities of one definition under their SQL aliases, and field lookups with the checks."""

    def __init__(self, entities: list[Entity], viewer: Viewer):
        self.viewer = viewer
        self.aliases = {e.entity_name: (f"e{i}", e) for i, e in enumerate(entities)}

    def field(self, qualified: str, purpose: str) -> _Ref:
        entity_name, field_name = qualified.split(".", 1)
        if entity_name not in self.aliases:
            raise Invalid(f"{purpose} {qualified}: entity {entity_name!r} is not one of this definition's entities")
        alias, entity = self.aliases[entity_name]
        spec = next((f for f in entity.allowed_fields if f.name == field_name), None)
        if spec is None:
            raise Invalid(f"{purpose} {qualified}: {field_name!r} is not an allowed field of {entity_name}")
        if CLASSIFICATION_ORDER.index(spec.classification) > CLASSIFICATION_ORDER.index(self.viewer.clearance):
            raise Invalid(f"{purpose} {qualified}: the field is classified {spec.classification}; "
                          f"the requester is cleared for {self.viewer.clearance}")
        return _Ref(alias, entity, spec)

    def output(self, ref: _Ref) -> exp.Expression:
        """The column as the requester may see it: masked in the SQL when it must be."""
        if ref.spec.masking == "none" or self.viewer.unmasked:
            return ref.column()
        text = exp.cast(ref.column(), "text")
        if ref.spec.masking == "hash":
            return exp.func("encode", exp.func("sha256", exp.func("convert_to", text, exp.Literal.string("UTF8"))),
                            exp.Literal.string("hex"))
        if ref.spec.masking == "truncate":
            return exp.func("left", text, exp.Literal.number(4))
        return exp.Literal.string("****")

    def masked(self, ref: _Ref) -> bool:
        return ref.spec.masking != "none" and not self.viewer.unmasked


def _coerce(ref: _Ref, value: object, qualified: str) -> object:
    kind = ref.spec.type
    ok = {
        "text": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "bigint": isinstance(value, int) and not isinstance(value, bool),
        "numeric": isinstance(value, int | float) and not isinstance(value, bool),
    }.get(kind)
    if kind in ("date", "timestamptz"):
        try:
            return dt.date.fromisoformat(value) if kind == "date" else dt.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise Invalid(f"filter {qualified}: {value!r} is not an ISO {kind}") from None
    if not ok:
        raise Invalid(f"filter {qualified}: {value!r} is not a {kind} value")
    return value


def _condition(scope: _Scope, flt: Filter, params: _Params) -> exp.Expression:
    ref = scope.field(flt.field, "filter")
    if not ref.spec.filterable:
        raise Invalid(f"filter {flt.field}: the field cannot be filtered")
    col = ref.column()
    if flt.op == "is_null":
        return exp.Is(this=col, expression=exp.Null())
    if flt.op == "not_null":
        return exp.Not(this=exp.Is(this=col, expression=exp.Null()))
    if flt.op in ("in", "not_in"):
        values = [params.bind(_coerce(ref, v, flt.field)) for v in flt.value]
        inside = exp.In(this=col, expressions=values)
        return exp.Not(this=inside) if flt.op == "not_in" else inside
    if flt.op == "between":
        if ref.spec.type not in ORDERED:
            raise Invalid(f"filter {flt.field}: between needs an ordered field, not {ref.spec.type}")
        low, high = (params.bind(_coerce(ref, v, flt.field)) for v in flt.value)
        return exp.Between(this=col, low=low, high=high)
    if flt.op == "contains":
        if ref.spec.type != "text":
            raise Invalid(f"filter {flt.field}: contains needs a text field")
        # strpos: the value is matched literally; no LIKE pattern characters to escape
        return exp.GT(this=exp.func("strpos", col, params.bind(flt.value)), expression=exp.Literal.number(0))
    if flt.op not in ("eq", "ne") and ref.spec.type not in ORDERED:
        raise Invalid(f"filter {flt.field}: {flt.op} needs an ordered field, not {ref.spec.type}")
    return _COMPARE[flt.op](this=col, expression=params.bind(_coerce(ref, flt.value, flt.field)))


def _ref_token(index: int) -> str:
    # A leading underscore: no registry identifier can be this name (they start with a letter).
    return f"_nexus_ref_{index}"


def _from_and_joins(query: exp.Select, entities: list[Entity], scope: _Scope, *, for_run: bool) -> exp.Select:
    def table(entity: Entity, alias: str) -> exp.Table:
        if for_run:  # replaced by a ref() call once the SQL is text (see _as_section_sql)
            return exp.table_(_ref_token(entities.index(entity))).as_(alias)
        info = dbt_manifest.model(entity.data_source.model, entity.data_source.version)
        return exp.table_(info.alias, db=info.schema, quoted=True).as_(alias)

    base = entities[0]
    query = query.from_(table(base, "e0"))
    for i, other in enumerate(entities[1:], start=1):
        declared = [(j, "e0", f"e{i}") for j in base.joins if j.to_entity == other.entity_name]
        declared += [(j, f"e{i}", "e0") for j in other.joins if j.to_entity == base.entity_name]
        if not declared:
            raise Invalid(f"no join is declared between {base.entity_name} and {other.entity_name}")
        join, left, right = declared[0]
        conditions = [exp.EQ(this=exp.column(k.field, table=left, quoted=True),
                             expression=exp.column(k.to_field, table=right, quoted=True)) for k in join.keys]
        conditions.append(exp.EQ(this=exp.column("tenant_id", table="e0", quoted=True),
                                 expression=exp.column("tenant_id", table=f"e{i}", quoted=True)))
        query = query.join(table(other, f"e{i}"), on=exp.and_(*conditions), join_type=join.kind)
    return query


# "Reports MUST include case suspension status when cases are visible to the requester": an
# entity that declares this field (incidents) shows it whenever its rows are shown one by one.
CASE_STATUS = "suspension_status"


def _shown_fields(spec: DefinitionSpec, scope: _Scope) -> list[str]:
    """The selected fields, plus the case status of every case entity shown row by row."""
    fields = list(spec.fields)
    if spec.aggregates:
        return fields
    for entity_name in dict.fromkeys(f.split(".", 1)[0] for f in spec.fields):
        entity = scope.aliases.get(entity_name, (None, None))[1]
        status = f"{entity_name}.{CASE_STATUS}"
        if entity is not None and status not in fields and any(f.name == CASE_STATUS for f in entity.allowed_fields):
            fields.append(status)
    return fields


def _selection(spec: DefinitionSpec, scope: _Scope, several: bool) -> tuple[list, list[OutputColumn], list]:
    """SELECT list, output columns and GROUP BY expressions."""
    selects, columns, group_exprs = [], [], []
    for qualified in _shown_fields(spec, scope):
        ref = scope.field(qualified, "field")
        name = qualified.replace(".", "__") if several else ref.spec.name
        selects.append(exp.alias_(scope.output(ref), name, quoted=True))
        columns.append(OutputColumn(name, ref.spec.type, ref.spec.classification, scope.masked(ref)))
    for qualified in spec.group_by:
        ref = scope.field(qualified, "group_by")
        if not ref.spec.groupable:
            raise Invalid(f"group_by {qualified}: the field cannot be grouped")
        group_exprs.append(scope.output(ref))
    for agg in spec.aggregates:
        ref = scope.field(agg.field, "aggregate")
        if agg.function not in ("count", "count_distinct"):
            if not ref.spec.aggregatable:
                raise Invalid(f"aggregate {agg.function}({agg.field}): the field cannot be aggregated")
            if agg.function in ("sum", "avg") and ref.spec.type not in NUMERIC:
                raise Invalid(f"aggregate {agg.function}({agg.field}): needs a numeric field, not {ref.spec.type}")
        selects.append(exp.alias_(_AGGREGATES[agg.function](ref.column()), agg.alias, quoted=True))
        kind = "bigint" if agg.function.startswith("count") else ("numeric" if agg.function == "avg" else ref.spec.type)
        columns.append(OutputColumn(agg.alias, kind, ref.spec.classification, False))
    return selects, columns, group_exprs


_AGGREGATES = {
    "count": lambda c: exp.Count(this=c),
    "count_distinct": lambda c: exp.Count(this=exp.Distinct(expressions=[c])),
    "sum": lambda c: exp.Sum(this=c),
    "avg": lambda c: exp.Avg(this=c),
    "min": lambda c: exp.Min(this=c),
    "max": lambda c: exp.Max(this=c),
}


def _conditions(spec: DefinitionSpec, entities: list[Entity], scope: _Scope, params: _Params,
                window: Window | None, *, for_run: bool) -> list[exp.Expression]:
    conditions = [_condition(scope, f, params) for f in spec.filters]
    if spec.measurement_type:
        ref = scope.field(f"{entities[0].entity_name}.measurement_type", "measurement_type")
        conditions.append(exp.In(this=ref.column(), expressions=[params.bind(m) for m in spec.measurement_type]))
    if for_run and spec.time_window is not None:  # the run's own window parameters
        ref = _window_field(spec, scope)
        conditions += [exp.GTE(this=ref.column(), expression=exp.Placeholder(this="window_start")),
                       exp.LT(this=ref.column(), expression=exp.Placeholder(this="window_end"))]
    elif window is not None:
        if spec.time_window is None:
            raise Invalid("this definition has no time_window field, so a run cannot take a window")
        ref = _window_field(spec, scope)
        conditions += [exp.GTE(this=ref.column(), expression=params.bind(window.start)),
                       exp.LT(this=ref.column(), expression=params.bind(window.end))]
    return conditions


def _lead_with_tenant(selects: list, columns: list[OutputColumn], group_exprs: list) -> None:
    """A run's output starts with tenant_id, like every report section: Gate B's shared suite
    checks every row names the run's tenant (row-level security makes it one tenant, so grouping
    by it changes no number). A selected tenant_id field is the same column: moved, not repeated."""
    tenant = exp.column("tenant_id", table="e0", quoted=True)
    keep = [i for i, c in enumerate(columns) if c.name != "tenant_id"]
    selects[:] = [exp.alias_(tenant, "tenant_id", quoted=True)] + [selects[i] for i in keep]
    columns[:] = [OutputColumn("tenant_id", "text", "internal", False)] + [columns[i] for i in keep]
    if group_exprs:
        group_exprs.insert(0, tenant)


def _window_field(spec: DefinitionSpec, scope: _Scope) -> _Ref:
    ref = scope.field(spec.time_window.field, "time_window")
    if ref.spec.type not in ("date", "timestamptz"):
        raise Invalid(f"time_window {spec.time_window.field}: needs a date or timestamptz field")
    return ref


def _ordering(spec: DefinitionSpec, columns: list[OutputColumn], several: bool) -> list[exp.Ordered]:
    names = {c.name for c in columns}
    order = []
    for s in spec.sort:
        key = s.field if s.field in names else s.field.replace(".", "__") if several else s.field.split(".")[-1]
        if key not in names:
            raise Invalid(f"sort {s.field}: sort by a selected field or an aggregate alias")
        order.append(exp.Ordered(this=exp.column(key, quoted=True), desc=s.direction == "desc"))
    return order


def compile_definition(spec: DefinitionSpec, entities: list[Entity], viewer: Viewer, *,
                       window: Window | None = None, row_limit: int | None = None, for_run: bool = False) -> Compiled:
    """The SELECT for this definition as this viewer may see it; Invalid names the first problem.

    For a preview the SQL is ready to run (relations resolved, window bound). For a run
    (`for_run`) it is a report section's SQL: relations as `ref()` calls and the window as the
    run's `%(window_start)s`/`%(window_end)s`, so the run engine renders, guards and binds it like
    any template section, and the bound values travel as JSON in the run's request.
    """
    if [e.entity_id for e in entities] != list(spec.entity_ids):
        raise Invalid("entity_ids do not match the entities given")  # a caller bug, kept loud
    inactive = [e.entity_name for e in entities if e.status != "active"]
    if inactive:
        raise Invalid(f"entities not active: {', '.join(inactive)}")
    if not spec.aggregates and not viewer.rows_allowed:
        raise Invalid("row-level output needs the report_rows permission; add aggregates (count, sum, ...) instead")
    scope, params, several = _Scope(entities, viewer), _Params(portable=for_run), len(entities) > 1
    selects, columns, group_exprs = _selection(spec, scope, several)
    if for_run:
        _lead_with_tenant(selects, columns, group_exprs)
    query = _from_and_joins(exp.select(*selects), entities, scope, for_run=for_run)
    conditions = _conditions(spec, entities, scope, params, window, for_run=for_run)
    if conditions:
        query = query.where(exp.and_(*conditions))
    if spec.aggregates and group_exprs:
        query = query.group_by(*group_exprs)
    order = _ordering(spec, columns, several)
    if order:
        query = query.order_by(*order)
    if row_limit is not None:
        query = query.limit(params.bind(row_limit))
    sql = query.sql(dialect="postgres")
    if for_run:
        return Compiled(_as_section_sql(sql, entities), params.values, tuple(columns))
    # Defence in depth, as for template sections: the same guard, over exactly the entities' models.
    relations = [dbt_manifest.model(e.data_source.model, e.data_source.version).relation for e in entities]
    sql_guard.check(sql, section=f"definition over {', '.join(e.entity_name for e in entities)}", relations=relations,
                    parameters=params.values)
    return Compiled(sql, params.values, tuple(columns))


def _as_section_sql(sql: str, entities: list[Entity]) -> str:
    """Each relation token as a `ref(model, version)` call: the run engine resolves it against the
    dbt manifest and lets the SQL guard allow exactly these relations. Tokens and model names are
    registry identifiers ([a-z0-9_]), so no Jinja syntax can arrive any other way."""
    for index, entity in enumerate(entities):
        source = entity.data_source
        call = f"ref('{source.model}'" + (f", {source.version}" if source.version else "") + ")"
        sql = re.sub(rf"\b{_ref_token(index)}\b", "{{ " + call + " }}", sql)
    return sql
