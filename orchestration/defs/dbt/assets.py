"""The dbt project as Dagster assets: sources -> staging views -> metric models."""


import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.db import warehouse
from orchestration.metrics.dbt_manifest import MANIFEST_PATH, dbt_executable
from orchestration.settings import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_asset_key(schema: str, alias: str) -> dg.AssetKey:
    """One naming rule for every dbt model: <schema>/<relation>, e.g. analytics/metric_incident_flow_v1."""
    return dg.AssetKey([schema, alias])


class NexusDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return dbt_asset_key(dbt_resource_props["schema"], dbt_resource_props["alias"])

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str] | None:
        """The model's `config.meta.owner` (the metric dictionary names one per metric model)."""
        owner = (dbt_resource_props.get("meta") or {}).get("owner") or (
            (dbt_resource_props.get("config") or {}).get("meta") or {}).get("owner")
        if not owner:
            return super().get_owners(dbt_resource_props)
        return [owner] if "@" in owner else [f"team:{owner}"]

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "metrics" if dbt_resource_props.get("schema") == "analytics" else "staging"


@dbt_assets(manifest=MANIFEST_PATH, project=dbt_project, dagster_dbt_translator=NexusDbtTranslator())
def nexus_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    # The profile reads the warehouse location from the environment; the embedded server may
    # only now have been started by this process.
    os.environ.update(warehouse.dbt_env())
    yield from dbt.cli(["build"], context=context).stream()


# The venv's dbt, also when Dagster runs without the venv on PATH.
dbt_resource = DbtCliResource(
    project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable()
)
