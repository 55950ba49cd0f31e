"""Template files: a broken template is refused at load with a message naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestration.catalog import templates as catalog
from orchestration.metrics import dbt_manifest

SOURCE = catalog.template_path("incident_summary", 1)


def write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(SOURCE.read_text())
    mutate(data)
    path = tmp_path / SOURCE.name
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_system_template_loads():
    template = catalog.load("incident_summary")
    assert template.version == 1 and template.primary_section == "summary_by_severity"
    assert set(template.formats) == {"csv", "json", "xlsx", "pdf"}
    assert len(template.content_hash) == 64


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(formats=["csv", "docx"]), "formats"),
    (lambda d: d.update(sensitivity="top-secret"), "sensitivity"),
    (lambda d: d.update(primary_section="nope"), "primary_section"),
    (lambda d: d["sections"][0]["columns"].pop(0), "tenant_id"),
    (lambda d: d["charts"][0].update(y=["missing_column"]), "missing_column"),
    (lambda d: d.update(surprise=1), "surprise"),
    (lambda d: d["sections"][0]["columns"][1].update(type="varchar(3)"), "type"),
])
def test_invalid_templates_are_refused_with_the_file_named(tmp_path, mutate, message):
    path = write(tmp_path, mutate)
    with pytest.raises(catalog.TemplateError) as err:
        catalog.load_file(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_file_name_must_match_key_and_version(tmp_path):
    path = write(tmp_path, lambda d: d.update(version=2))
    with pytest.raises(catalog.TemplateError, match="should be named incident_summary.v2.yaml"):
        catalog.load_file(path)


def test_unknown_template_lists_known_ones():
    known = ("analyst_throughput, attack_coverage, compliance_evidence_summary, connector_health, incident_summary, "
             "reporting_kpis, sla_performance")
    with pytest.raises(catalog.TemplateError, match=f"known templates: {known}"):
        catalog.load("sla_dashboard")


def test_content_hash_changes_with_content(tmp_path):
    original = catalog.load_file(SOURCE)
    changed = catalog.load_file(write(tmp_path, lambda d: d.update(title="Incident summary (edited)")))
    assert original.content_hash != changed.content_hash


def test_every_model_and_metric_the_template_names_resolves(manifest_path):
    template = catalog.load("incident_summary")
    manifest = dbt_manifest.load_manifest()
    assert set(template.models_read()) == {
        ("metric_incident_flow", 1), ("metric_incident_response", 1), ("metric_incident_status", 1), ("tenants", None),
    }
    for name, version in template.models_read():
        assert dbt_manifest.model(name, version, manifest).relation.startswith('"analytics".')
    for metric in template.metrics:
        definition = dbt_manifest.metric_definition(metric.id, metric.model, metric.version, manifest)
        assert definition["formula"] and definition["owner"]
