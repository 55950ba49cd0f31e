"""Redaction and output checks: the external variant hides what its policy says, wherever the
sections show it, and no file is published that does not read back as the snapshot."""

from __future__ import annotations

import csv
import io
import json
import re

import openpyxl
import pytest
from pypdf import PdfReader

from orchestration.access import policy as access
from orchestration.catalog import templates
from orchestration.exports import redaction
from orchestration.governance import lifecycle
from orchestration.runs import engine, failures, records
from orchestration.runs.request import ReportRequest
from orchestration.services import templates as template_service

from ..conftest import PERIOD

HEX16 = re.compile(r"^[0-9a-f]{16}$")


def run(template, tenant="acme"):
    return engine.run_report(template, ReportRequest.for_period(template, tenant, PERIOD,
                                                                  requester=f"manager@{tenant}.example"))


def variant_files(published, variant):
    return {f["format"]: published.location / f["name"] for f in published.manifest["files"] if f["variant"] == variant}


def text_of(path) -> str:
    if path.suffix == ".xlsx":
        book = openpyxl.load_workbook(path, read_only=True)
        text = "\n".join(str(v) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for v in row if v is not None)
        book.close()
        return text
    if path.suffix == ".pdf":
        return re.sub(r"\s+", "", "".join(p.extract_text() for p in PdfReader(path).pages))
    return path.read_text()


@pytest.fixture(scope="module")
def throughput(built):
    return run(templates.load("analyst_throughput"))


def analyst_names(conn, tenant):
    with conn, conn.cursor() as cur:
        cur.execute("select name from raw.analysts where tenant_id = %s", (tenant,))
        return [r[0] for r in cur.fetchall()]


def test_external_variant_hides_names_in_every_format_and_the_internal_keeps_them(throughput, conn):
    names = analyst_names(conn, "acme")
    internal, external = variant_files(throughput, "internal"), variant_files(throughput, "external")
    assert set(internal) == set(external) == {"csv", "json", "xlsx", "pdf"}
    shown = [n for n in names if n in internal["csv"].read_text()]
    assert shown, "the internal variant names the analysts: the check below would prove nothing"
    for fmt, path in external.items():
        text = text_of(path)
        squeeze = (lambda s: re.sub(r"\s+", "", s)) if fmt == "pdf" else (lambda s: s)
        leaked = [n for n in shown if squeeze(n) in text]
        assert not leaked, f"external {fmt} shows {leaked}"
    rows = list(csv.DictReader(io.StringIO(external["csv"].read_text())))
    assert rows and all(HEX16.match(r["analyst_name"]) and HEX16.match(r["analyst_id"]) for r in rows)
    assert {r["team"] for r in rows} <= {"tier1", "tier2", "threat_hunting", "ir"}  # not personal: kept


def test_manifest_lists_every_redaction_with_its_rule_and_rationale(throughput):
    redactions = {(r["section"], r["column"]): r for r in throughput.manifest["redactions"]}
    assert set(redactions) == {("by_analyst", "analyst_id"), ("by_analyst", "analyst_name")}
    name = redactions[("by_analyst", "analyst_name")]
    assert name["action"] == "hash" and "dim_analysts.analyst_name" in name["source_fields"] and name["rationale"]
    assert {f["variant"] for f in throughput.manifest["files"]} == {"internal", "external"}


def test_hashes_are_stable_within_a_tenant_and_differ_between_tenants(throughput, conn):
    again = run(templates.load("analyst_throughput"))
    first = external_csv_column(throughput, "analyst_name")
    assert external_csv_column(again, "analyst_name") == first  # same key, same pseudonyms
    assert redaction.tenant_key(conn, "acme") != redaction.tenant_key(conn, "globex")


def test_every_external_file_is_named_and_marked_as_the_redacted_variant(throughput):
    """analyst_throughput is confidential: each file's name, first page, About sheet and JSON say
    so, and the external ones that they are redacted and under which policy."""
    assert throughput.manifest["classification"] == {"sensitivity": "confidential", "marking": "CONFIDENTIAL"}
    for variant in ("internal", "external"):
        files = variant_files(throughput, variant)
        for path in files.values():
            assert path.name.startswith(f"acme_analyst_throughput_{PERIOD}_{variant}_") and "CONFIDENTIAL" in path.name
        statement = "redactions were applied under the redaction policy of analyst_throughput v1"
        first_page = " ".join(PdfReader(files["pdf"]).pages[0].extract_text().replace("\x00", "").split())
        about = {r[0]: r[1] for r in openpyxl.load_workbook(files["xlsx"], read_only=True)["About"].iter_rows(
            values_only=True) if r and r[0]}
        header = json.loads(files["json"].read_text())["report"]
        assert "CONFIDENTIAL" in first_page and about["Classification"] == header["classification"] == "CONFIDENTIAL"
        if variant == "external":
            assert "EXTERNAL (REDACTED) VARIANT" in first_page and statement in first_page
            assert statement in about["Redactions"] and statement in header["variant_statement"]
        else:
            assert "REDACTED" not in first_page and "Redactions" not in about and "redactions" not in header


def external_csv_column(published, column):
    rows = csv.DictReader(io.StringIO(variant_files(published, "external")["csv"].read_text()))
    return sorted(r[column] for r in rows)


def test_compliance_external_variant_masks_owners_and_truncates_titles(built):
    published = run(templates.load("compliance_evidence_summary"), tenant="globex")
    rows = list(csv.DictReader(io.StringIO(variant_files(published, "external")["csv"].read_text())))
    assert rows and all(r["owner_name"] in ("[redacted]", "") for r in rows)
    assert all(len(r["control_title"]) <= 41 for r in rows)
    assert any(r["control_title"].endswith("…") for r in rows)
    section = next(s for s in json.loads(variant_files(published, "external")["json"].read_text())["sections"]
                   if s["name"] == "control_status")
    assert {c["name"]: c["type"] for c in section["columns"]}["owner_name"] == "text"


def renamed_variant(template, version, rules):
    """by_analyst with the analyst's name under another output name, computed in another CTE."""
    section = template.section("by_analyst")
    sql = section.sql.replace("coalesce(a.analyst_name, w.analyst_id) as analyst_name",
                              "upper(coalesce(a.analyst_name, w.analyst_id)) as who")
    columns = tuple(c.model_copy(update={"name": "who"}) if c.name == "analyst_name" else c for c in section.columns)
    sections = tuple(section.model_copy(update={"sql": sql, "columns": columns}) if s.name == "by_analyst" else s
                     for s in template.sections)
    policy = template.redaction.model_copy(update={"rules": rules})
    return template.model_copy(update={"version": version, "sections": sections, "redaction": policy})


def test_a_renamed_field_cannot_slip_past_the_policy(built, conn):
    template = templates.load("analyst_throughput")
    renamed = renamed_variant(template, 501, template.redaction.rules)
    planned = redaction.plan(renamed)["by_analyst"]
    assert planned["who"].action == "hash" and "dim_analysts.analyst_name" in planned["who"].fields

    uncovered = renamed_variant(template, 502, tuple(r for r in template.redaction.rules
                                                     if r.field != "dim_analysts.analyst_name"))
    with pytest.raises(lifecycle.GateAFailed, match="column who shows personal data .dim_analysts.analyst_name."):
        template_service.submit_template(conn, uncovered, actor=access.PLATFORM_OWNER)


def test_lineage_is_worked_out_once_per_template_version_and_again_for_a_new_manifest(built, monkeypatch):
    import copy

    from orchestration.metrics import dbt_manifest

    calls = []
    compute = redaction._compute_lineage
    monkeypatch.setattr(redaction, "_compute_lineage", lambda *a: calls.append(a[0]) or compute(*a))
    monkeypatch.setattr(redaction, "_lineage_cache", {})
    template = templates.load("analyst_throughput")
    first = redaction.plan(template)
    assert redaction.plan(template) == first and len(calls) == len(template.sections)  # the second run: cached
    changed = copy.deepcopy(dbt_manifest.load_manifest())  # as after `dbt parse` wrote a new manifest
    assert redaction.plan(template, changed) == first and len(calls) == 2 * len(template.sections)


def test_gate_a_refuses_a_rule_on_a_field_that_does_not_exist(built, conn):
    template = templates.load("analyst_throughput")
    bad_rule = templates.RedactionRule(field="dim_analysts.shoe_size", action="mask", rationale="nobody asked")
    problems = redaction.gate_a_problems(template.model_copy(update={
        "redaction": template.redaction.model_copy(update={"rules": (*template.redaction.rules, bad_rule)})}))
    assert problems == ["redaction rule for dim_analysts.shoe_size: no such dbt model column"]


def test_a_file_that_does_not_read_back_as_the_snapshot_is_not_published(built, conn, monkeypatch):
    """The CSV writer is swapped for one that drops the last row (the one stand-in here): the
    output check catches it, the run fails as format_error and nothing is published."""
    from orchestration.exports import csv_export, formats

    real = csv_export.write_csv

    def short_by_one(conn_, section, path, **kwargs):
        count = real(conn_, section, path, **kwargs)
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:-1]))
        return count

    monkeypatch.setattr(formats, "write_csv", short_by_one)  # what the csv record calls
    template = templates.load("incident_summary")
    with pytest.raises(failures.RunFailed) as failed:
        run(template, tenant="initech")
    assert failed.value.failure_class == "format_error"
    # The file name carries tenant, template, period, variant, the section a CSV holds and the marking.
    assert (f"output check failed: initech_incident_summary_{PERIOD}_internal_summary_by_severity_INTERNAL.csv: "
            "3 rows, the snapshot has 4") in failed.value.diagnosis
    record = records.get_run(conn, failed.value.run_id)
    assert record.artifact_location is None


def test_a_link_to_the_external_variant_serves_the_redacted_file(throughput, conn):
    from orchestration.links import service

    with conn:
        link = service.create(conn, throughput.run_id, fmt="csv", principal_id="executive@acme.example",
                              actor="manager@acme.example", variant="external")
    name, size, chunks = service.open_artifact(conn, link.run_id, link.variant, link.fmt)
    body = b"".join(chunks).decode()
    assert name == f"acme_analyst_throughput_{PERIOD}_external_by_analyst_CONFIDENTIAL.csv" and len(body.encode()) == size
    assert all(n not in body for n in analyst_names(conn, "acme"))
    no_variant = run(templates.load("incident_summary"), tenant="acme")
    with pytest.raises(service.LinkError, match="no external variant"):
        service.create(conn, no_variant.run_id, fmt="csv", principal_id="executive@acme.example",
                     actor="manager@acme.example", variant="external")
