"""Redaction: the external variant of a report, from the same snapshot.

A template's policy names source fields (`<dbt model>.<column>`) and what external recipients
see of them: mask, a hash with a per-tenant key, drop, or truncate. Which section columns show a
field is decided by column lineage of the section's SQL (sqlglot), not by output names, so a
field renamed, aliased or computed into another column is still caught. Fields the dbt project
marks `meta: {pii: true}` must be covered by a rule before a template with an external variant
passes Gate A.

The external variant reads each snapshot table through a redacting subquery, so every format
renderer works unchanged and nothing unredacted is written for it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot.lineage import lineage

from orchestration.catalog import section_sql
from orchestration.catalog.templates import RedactionRule, Template
from orchestration.exports import Column, SectionSnapshot
from orchestration.exports.sections import REDACTION_MASK
from orchestration.metrics import dbt_manifest

# When several rules reach one column, the strongest wins.
STRENGTH = {"truncate": 1, "mask": 2, "hash": 3, "drop": 4}
MASK = REDACTION_MASK
HASH_CHARS = 16


@dataclass(frozen=True)
class ColumnRedaction:
    section: str
    column: str
    action: str
    fields: tuple[str, ...]
    rationale: str
    length: int | None = None

    def as_manifest(self) -> dict[str, Any]:
        entry = {"section": self.section, "column": self.column, "action": self.action,
                 "source_fields": list(self.fields), "rationale": self.rationale}
        if self.length:
            entry["length"] = self.length
        return entry


def _schema(manifest) -> dict[str, dict[str, dict[str, str]]]:
    schema: dict[str, dict[str, dict[str, str]]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model":
            columns = {c: (v.get("data_type") or "text") for c, v in node["columns"].items()}
            schema.setdefault(node["schema"], {})[node["alias"]] = columns
    return schema


def _relations(manifest) -> dict[tuple[str, str], str]:
    """(schema, alias) -> model name, to name lineage leaves in the policy's terms."""
    return {(n["schema"], n["alias"]): n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def section_lineage(template: Template, section_name: str, manifest=None) -> dict[str, set[str]]:
    """Output column -> the `<model>.<column>` source fields it is computed from."""
    manifest = manifest or dbt_manifest.load_manifest()
    section = template.section(section_name)
    sql = section_sql.render(section, lambda name, version=None: dbt_manifest.model(name, version, manifest).relation).sql
    # The parameters are values, never columns: neutral literals for parsing.
    params = {f.name: "NULL" for f in template.filters} | {"window_start": "'2000-01-01'", "window_end": "'2000-02-01'"}
    for name, literal in params.items():
        sql = sql.replace(f"%({name})s", literal)
    return _lineage(sql, section.columns, manifest)


# (manifest id, SQL, columns) -> (that manifest, lineage): a template version's lineage is worked
# out once per process, not for every run (sqlglot's lineage of a section is tens of ms; a
# month-end fan-out runs each template hundreds of times). Keyed by the manifest object, which
# dbt_manifest replaces when the file changes; the stored reference keeps its id from being reused.
_lineage_cache: dict[tuple, tuple[dict, dict[str, frozenset[str]]]] = {}
_LINEAGE_CACHE_SIZE = 256


def _lineage(sql: str, columns, manifest) -> dict[str, set[str]]:
    key = (id(manifest), sql, tuple(c.name for c in columns))
    hit = _lineage_cache.get(key)
    if hit is None or hit[0] is not manifest:
        if len(_lineage_cache) >= _LINEAGE_CACHE_SIZE:
            _lineage_cache.clear()
        hit = _lineage_cache[key] = (manifest, {c: frozenset(f) for c, f in _compute_lineage(sql, columns, manifest).items()})
    return {column: set(fields) for column, fields in hit[1].items()}


def _compute_lineage(sql: str, columns, manifest) -> dict[str, set[str]]:
    schema, relations = _schema(manifest), _relations(manifest)
    parsed = sqlglot.parse_one(sql, dialect="postgres")
    result = {}
    for column in columns:
        node = lineage(column.name, parsed, schema=schema, dialect="postgres")
        fields = set()
        for n in node.walk():
            if n.downstream or not isinstance(n.source, sqlglot.exp.Table):
                continue
            model = relations.get((n.source.db, n.source.name))
            if model:
                fields.add(f"{model}.{n.name.rsplit('.', 1)[-1]}")
        result[column.name] = fields
    return result


def pii_fields(manifest=None) -> set[str]:
    """Source fields the dbt project marks as personal data (column meta pii: true)."""
    manifest = manifest or dbt_manifest.load_manifest()
    found = set()
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model":
            continue
        for name, column in node["columns"].items():
            meta = column.get("meta") or (column.get("config") or {}).get("meta") or {}
            if meta.get("pii"):
                found.add(f"{node['name']}.{name}")
    return found


def plan(template: Template, manifest=None) -> dict[str, dict[str, ColumnRedaction]]:
    """Per section, per output column: the redaction external recipients get."""
    manifest = manifest or dbt_manifest.load_manifest()
    rules: dict[str, RedactionRule] = {r.field: r for r in template.redaction.rules}
    planned: dict[str, dict[str, ColumnRedaction]] = {}
    for section in template.sections:
        for column, fields in section_lineage(template, section.name, manifest).items():
            hits = [rules[f] for f in sorted(fields) if f in rules]
            if not hits:
                continue
            strongest = max(hits, key=lambda r: STRENGTH[r.action])
            planned.setdefault(section.name, {})[column] = ColumnRedaction(
                section=section.name, column=column, action=strongest.action,
                fields=tuple(sorted(f for f in fields if f in rules)), rationale=strongest.rationale,
                length=strongest.length,
            )
    return planned


def gate_a_problems(template: Template, manifest=None) -> list[str]:
    """An external variant must redact every column that shows personal data; rules must name real fields."""
    manifest = manifest or dbt_manifest.load_manifest()
    problems = []
    known = {f"{n['name']}.{c}" for n in manifest["nodes"].values() if n["resource_type"] == "model" for c in n["columns"]}
    for rule in template.redaction.rules:
        if rule.field not in known:
            problems.append(f"redaction rule for {rule.field}: no such dbt model column")
    if not template.redaction.external_variant:
        return problems
    pii = pii_fields(manifest)
    covered = {r.field for r in template.redaction.rules}
    try:
        for section in template.sections:
            for column, fields in section_lineage(template, section.name, manifest).items():
                exposed = sorted((fields & pii) - covered)
                if exposed:
                    problems.append(f"section {section.name}: column {column} shows personal data "
                                    f"({', '.join(exposed)}) with no redaction rule for the external variant")
    except sqlglot.errors.SqlglotError as exc:
        problems.append(f"cannot trace the columns of the sections for redaction: {exc}")
    return problems


# ---------------------------------------------------------------- rendering


def tenant_key(conn, tenant_id: str) -> str:
    """The tenant's hashing key (hex), created on first use; it never leaves the control schema."""
    with conn, conn.cursor() as cur:
        cur.execute("insert into control.tenant_secrets (tenant_id, hash_key) values (%s, %s) on conflict do nothing",
                    (tenant_id, secrets.token_hex(32)))
        cur.execute("select hash_key from control.tenant_secrets where tenant_id = %s", (tenant_id,))
        return cur.fetchone()[0]


def _expression(column: Column, redaction: ColumnRedaction | None, key_literal: str) -> str | None:
    quoted = f'"{column.name}"'
    if redaction is None:
        return quoted
    if redaction.action == "drop":
        return None
    if redaction.action == "mask":
        return f"case when {quoted} is null then null else '{MASK}' end as {quoted}"
    if redaction.action == "hash":
        digest = f"encode(sha256(decode({key_literal}, 'hex') || convert_to({quoted}::text, 'UTF8')), 'hex')"
        return f"case when {quoted} is null then null else left({digest}, {HASH_CHARS}) end as {quoted}"
    n = int(redaction.length)
    return (f"case when length({quoted}::text) > {n} then left({quoted}::text, {n}) || '…' "
            f"else {quoted}::text end as {quoted}")


def redacted_sections(conn, sections: dict[str, SectionSnapshot], planned: dict[str, dict[str, ColumnRedaction]],
                      tenant_id: str, order_column: str) -> dict[str, SectionSnapshot]:
    """The same snapshots, read through redacting subqueries (columns dropped or retyped as text)."""
    key_literal = "'" + tenant_key(conn, tenant_id) + "'"
    out = {}
    for name, snap in sections.items():
        rules = planned.get(name, {})
        if not rules:
            out[name] = snap
            continue
        expressions, columns = [], []
        for column in snap.columns:
            rule = rules.get(column.name)
            expression = _expression(column, rule, key_literal)
            if expression is None:
                continue
            expressions.append(expression)
            columns.append(column if rule is None else Column(column.name, "text", column.label))
        subquery = f"(select {', '.join(expressions)}, \"{order_column}\" from {snap.table}) as redacted"
        out[name] = SectionSnapshot(name=snap.name, title=snap.title, table=subquery, columns=tuple(columns),
                                    order_by=snap.order_by, row_count=snap.row_count)
    return out
