"""Checks an entry's data source against the dbt manifest: the model is reportable (analytics
schema, row-level security post-hook, a contract with typed columns) and every declared field is
one of its columns, of a matching type. The registry never trusts a name it has not found here.
"""

from __future__ import annotations

from typing import Any

from orchestration.errors import Invalid
from orchestration.metrics import dbt_manifest
from orchestration.registry.entities import DataSource, FieldSpec

REPORTABLE_SCHEMA = "analytics"
# The post-hooks that give a model row-level security: tenant_rls (metric and mart models:
# tenant only) and governed_rls (entity models: tenant, verticals, regions and consent).
RLS_POST_HOOKS = ("tenant_rls", "governed_rls")
# dbt contract data types (as written in the model YAML) each registry type accepts.
_TYPES: dict[str, frozenset[str]] = {
    "text": frozenset({"text", "varchar", "character varying", "string"}),
    "integer": frozenset({"integer", "int", "int4", "smallint"}),
    "bigint": frozenset({"bigint", "int8", "integer", "int"}),
    "numeric": frozenset({"numeric", "decimal", "double precision", "float8", "real"}),
    "boolean": frozenset({"boolean", "bool"}),
    "date": frozenset({"date"}),
    "timestamptz": frozenset({"timestamptz", "timestamp with time zone"}),
}


def model_columns(source: DataSource, manifest: dict[str, Any] | None = None) -> dict[str, str]:
    """Column name -> declared data type of a reportable model, or Invalid saying why it is not one."""
    manifest = manifest or dbt_manifest.load_manifest()
    try:
        info = dbt_manifest.model(source.model, source.version, manifest)
    except dbt_manifest.DbtError as exc:
        raise Invalid(f"data_source: {exc}") from None
    node = manifest["nodes"][info.unique_id]
    where = f"dbt model {source.model}" + (f" v{source.version}" if source.version else "")
    if info.schema != REPORTABLE_SCHEMA:
        raise Invalid(f"data_source: {where} is in schema {info.schema}; only {REPORTABLE_SCHEMA} models are reportable")
    if not rls_hook(node):
        raise Invalid(f"data_source: {where} has no row-level security (a {' or '.join(RLS_POST_HOOKS)} post-hook)")
    columns = {name: (col.get("data_type") or "").lower() for name, col in node.get("columns", {}).items()}
    if "tenant_id" not in columns:
        raise Invalid(f"data_source: {where} has no tenant_id column")
    return columns


def rls_hook(node: dict[str, Any]) -> str | None:
    """Which row-level security post-hook a manifest node is built with, or None."""
    hooks = " ".join(h.get("sql", "") for h in node.get("config", {}).get("post-hook") or [])
    return next((name for name in RLS_POST_HOOKS if f"{name}()" in hooks), None)


def check_fields(source: DataSource, fields: tuple[FieldSpec, ...], manifest: dict[str, Any] | None = None) -> None:
    columns = model_columns(source, manifest)
    problems = []
    for spec in fields:
        declared = columns.get(spec.name)
        if declared is None:
            problems.append(f"{spec.name} is not a column of {source.model} (columns: {', '.join(sorted(columns))})")
        elif declared not in _TYPES[spec.type]:
            problems.append(f"{spec.name} is {declared} in {source.model}, not {spec.type}")
    if problems:
        raise Invalid("allowed_fields: " + "; ".join(problems))
