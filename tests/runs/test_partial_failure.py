"""Partial report failures (issue 12, edge cases): when some parts of a run fail to render, nothing
is published and the run names every failed part, in its record, its status and its audit row."""

from __future__ import annotations

import dataclasses

import pytest

from orchestration.catalog import templates
from orchestration.exports import formats
from orchestration.runs import engine, failures, records
from orchestration.runs.request import ReportRequest
from tests.helpers.audit import audit_log
from tests.helpers.cli import invoke

from ..conftest import PERIOD


def test_a_run_with_failing_parts_publishes_nothing_and_lists_every_part(built, conn, monkeypatch, artifacts_root):
    """The XLSX and PDF writers are swapped for ones that fail (the stand-in: nothing else here
    makes a writer fail on demand); CSV and JSON still render, yet nothing is published."""

    def broken(name):
        def write(conn_, context, sections, path):
            path.write_bytes(b"half a file")
            raise ValueError(f"{name} writer broke")
        return write

    for name in ("xlsx", "pdf"):
        monkeypatch.setitem(formats.FORMATS, name, dataclasses.replace(formats.get(name), write=broken(name)))
    template = templates.load("incident_summary")
    request = ReportRequest.for_period(template, "acme", PERIOD, requester="manager@acme.example")
    with pytest.raises(failures.RunFailed) as failed:
        engine.run_report(template, request, retries=False)
    run_id = failed.value.run_id
    record = records.get_run(conn, run_id)
    assert record.state == "failed" and record.failure_class == "format_error"
    assert record.artifact_location is None
    assert not list(artifacts_root.rglob(f"*{run_id}*/manifest.json"))  # no manifest anywhere: nothing visible
    parts = {(p["format"], p["variant"]) for p in record.failed_parts}
    variants = {"internal", "external"} if template.redaction.external_variant else {"internal"}
    assert parts == {(fmt, v) for fmt in ("xlsx", "pdf") for v in variants}
    assert all(p["error"] == f"ValueError: {p['format']} writer broke" for p in record.failed_parts)
    assert f"{len(parts)} part(s) failed, nothing published" in record.diagnosis
    # the CLI's run status lists each part
    shown = invoke("runs", "show", run_id)
    assert shown.exit_code == 0, shown.output
    assert sorted(line.split(None, 2)[2].split(":")[0] for line in shown.output.splitlines()
                  if line.startswith("failed part")) == sorted(f"{f} ({v})" for f, v in parts)
    # the outcome's audit row carries the run and its timing
    ((outcome, details),) = audit_log(conn, "outcome", "details", action="run.failed", correlation_id=run_id)
    assert outcome == "failed" and details["run_id"] == run_id and details["total_seconds"] >= details["running_seconds"] > 0
