"""The dbt project as the metric dictionary: versioned, contracted, owned, and locked down."""

from __future__ import annotations

import pytest

from orchestration.metrics import dbt_manifest
from orchestration.registry import sources


@pytest.fixture(scope="module")
def manifest(manifest_path):
    return dbt_manifest.load_manifest(manifest_path)


def models(manifest, folder: str):
    return [n for n in manifest["nodes"].values()
            if n["resource_type"] == "model" and n["original_file_path"].startswith(f"models/{folder}/")]


def test_every_metric_model_is_versioned_contracted_and_documented(manifest):
    metric_models = models(manifest, "metrics")
    assert {(m["name"], m["version"]) for m in metric_models} >= {
        ("metric_incident_flow", 1), ("metric_incident_status", 1), ("metric_incident_response", 1)}
    for model in metric_models:
        assert model["version"] is not None and model["schema"] == "analytics"
        assert model["config"]["contract"]["enforced"] is True
        assert all(col.get("data_type") for col in model["columns"].values()), model["name"]
        meta = model["config"]["meta"]
        assert meta["owner"]
        for metric in meta["metrics"]:
            assert {"id", "label", "formula", "formula_version", "unit", "grain"} <= set(metric), metric
        assert model["description"] and all(c["description"] for c in model["columns"].values())


def test_every_analytics_model_has_rls_and_reader_grant_and_staging_has_neither(manifest):
    analytics = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["schema"] == "analytics"]
    assert analytics
    for model in analytics:
        assert sources.rls_hook(model), model["name"]
        assert model["config"]["grants"] == {"select": ["report_reader"]}
        assert "tenant_id" in model["columns"]
    for model in models(manifest, "staging"):
        assert model["schema"] == "staging"
        assert not model["config"].get("grants")


def test_metric_formulas_have_unit_tests(manifest):
    tested = {n["model"] for n in manifest.get("unit_tests", {}).values()}
    for model in models(manifest, "metrics"):
        assert model["name"] in tested, f"{model['name']} has no dbt unit test"


def test_metric_dictionary_document_is_current(manifest_path):
    from orchestration.metrics import dictionary as metric_docs

    expected = metric_docs.render_markdown(metric_docs.dictionary(dbt_manifest.load_manifest(manifest_path)))
    assert metric_docs.DOC_PATH.read_text() == expected, "run `nexus-reports metrics doc` and commit docs/metric-dictionary.md"


def test_every_template_metric_is_in_the_dictionary(manifest_path):
    from orchestration.catalog import templates as catalog
    from orchestration.metrics import dictionary as metric_docs

    entries = {(e["id"], e["model"], e["model_version"]): e for e in metric_docs.dictionary()}
    for template in catalog.load_all():
        for m in template.metrics:
            assert (m.id, m.model, m.version) in entries, f"{template.label} uses {m.id} not in the dictionary"
            assert template.label in entries[(m.id, m.model, m.version)]["templates"]
