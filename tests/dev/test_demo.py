"""`nexus-reports demo` end to end, as a user runs it, in its own home and database."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest

from orchestration.artifacts import local_store
from orchestration.catalog import templates
from orchestration.dev import demo, demo_output
from tests.helpers.cli import run


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory):
    env = {**os.environ, "NEXUS_HOME": str(tmp_path_factory.mktemp("demo-home"))}
    external = os.environ.get("REPORTS_DATABASE_URL")
    if external:
        params = psycopg2.extensions.parse_dsn(external)
        name = f"{params.get('dbname', 'postgres')}_demo"
        admin = psycopg2.connect(external)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
            cur.execute(f'drop database if exists "{name}_dagster" with (force)')
            cur.execute(f'create database "{name}"')
        admin.close()
        env["REPORTS_DATABASE_URL"] = psycopg2.extensions.make_dsn(external, dbname=name)
    return env


def run_cli(env, *args, timeout=900):
    # A process of its own: the demo runs in its own NEXUS_HOME and database.
    return run(*args, env=env, timeout=timeout)


def test_help_lists_the_commands():
    out = run("--help").stdout
    for command in ("seed", "demo", "dev", "build", "manifest"):
        assert command in out
    for command in ("seed", "demo", "dev"):
        assert run(command, "--help").returncode == 0


def test_progress_lines_and_a_table_that_fits_a_terminal():
    longest = max((t.key for t in templates.load_all()), key=len)
    done = demo.DemoResult(longest, "initech", "2026-11-16", True, 12.34, state="completed", rows=123_456,
                           gate="passed", files=["a.csv", "a.pdf", "a.xlsx", "a.json", "a.external.pdf", "manifest.json"],
                           location="/somewhere/very/long/" + "x" * 80, run_id="r1")
    failed = demo.DemoResult("incident_summary", "acme", "2026-11", False, 1.0, state="failed", gate="failed",
                             diagnosis="Gate B failed: critical expect_column_values_to_not_be_null")
    assert demo_output.progress_line(3, 18, done) == (
        f"[ 3/18] {longest} for initech, 2026-11-16: completed, Gate B passed, 123,456 rows, 6 files (12.3s)")
    assert demo_output.progress_line(4, 18, failed).endswith("failed: Gate B failed: critical "
                                                             "expect_column_values_to_not_be_null (1.0s)")
    header, *rows = demo_output.table_lines([done, failed])
    assert header.split() == ["template", "tenant", "period", "state", "gate", "rows", "files", "secs"]
    assert rows[0].split() == [longest, "initech", "2026-11-16", "completed", "passed", "123,456", "6", "files", "12.3"]
    assert all(len(line) <= demo_output.MAX_WIDTH for line in (header, *rows))
    assert not any("a.csv" in line or "/somewhere" in line for line in rows)
    summary = demo_output.summary_lines([done, failed], "local folder /x", "/h/logs/demo-dbt-build.log")
    assert summary[1] == "Done: 2 report runs, 1 completed with Gate B passed, 1 failed; 6 files in local folder /x."
    assert "  nexus-reports runs show r1" in "\n".join(summary) and summary[3] == "Next:"


def test_bad_input_is_one_clear_line(demo_env):
    proc = run_cli(demo_env, "demo", "--period", "last-june")
    assert proc.returncode != 0
    assert "invalid period 'last-june'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_end_to_end_twice(demo_env):
    first = run_cli(demo_env, "demo", "--tenants", "2", "--incidents", "3000")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    keys = {t.key for t in templates.load_all()}
    for template in templates.load_all():  # every template, for both tenants; a platform-wide one once
        lines = [line for line in first.stdout.splitlines() if line.split(" ", 1)[0] == template.key]
        assert len(lines) == (1 if template.scope == "platform" else 2), (template.key, first.stdout[-3000:])
        files = len(template.formats) * (2 if template.redaction.external_variant else 1) + 2  # + manifest, envelope
        assert all("completed" in line and "passed" in line and f"{files} files" in line for line in lines), lines
    # issue 14: plain text when redirected, one progress line per run, dbt's log in a file, a table that
    # fits a terminal, a summary and the next commands
    out = first.stdout + first.stderr
    assert "\x1b[" not in out, [line for line in out.splitlines() if "\x1b[" in line][:5]
    assert " - WARNING - " not in out  # dagster-dbt's per-test notes stay with dbt's log
    runs = sum(1 if t.scope == "platform" else 2 for t in templates.load_all())
    progress = [line for line in first.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == runs and all(f"/{runs}] " in line and ": completed, Gate B passed" in line
                                         for line in progress), progress
    log_line = next(line for line in first.stdout.splitlines() if line.startswith("dbt build (as Dagster assets)"))
    dbt_log = Path(log_line.split("dbt's log: ", 1)[1])
    logged = dbt_log.read_text()
    assert len(logged.splitlines()) > 20 and "metric_incident_status" in logged and "\x1b[" not in logged
    table = [line for line in first.stdout.splitlines() if line.split(" ", 1)[0] in {"template", *keys}]
    assert len(table) == runs + 1 and all(len(line) <= demo_output.MAX_WIDTH for line in table), table
    assert ".csv" not in first.stdout.split("secs", 1)[1].split("Reporting API:", 1)[0]  # files counted, not listed
    assert len(first.stdout.splitlines()) < 3 * runs + 60, first.stdout  # no dbt log in the terminal (+ the KPI table)
    verified = [line for line in first.stdout.splitlines() if line.startswith("provenance verify ")]
    assert len(verified) == len(keys) and all(": ok, " in line and "checks passed" in line for line in verified), verified
    assert {line.split("(", 1)[1].split(" for ")[0] for line in verified} == keys
    # the summary, then the KPI table of the demo's runs (as `nexus-reports kpis` prints it), then the pack
    lines = first.stdout.splitlines()
    kpi_header = max(i for i, line in enumerate(lines) if line.startswith("KPIs of the platform, "))
    kpi_rows = lines[kpi_header + 1:-1]
    # every report run and the Reporting API definition's run: completed, with complete provenance
    done = f"100.0% ({runs + 1}/{runs + 1})"
    assert any("run success rate" in line and done in line for line in kpi_rows), kpi_rows
    assert any("complete provenance" in line and done in line for line in kpi_rows), kpi_rows
    tail = lines[:kpi_header][-8:]
    tail = tail[next(i for i, line in enumerate(tail) if line.startswith("Done: ")):]
    assert tail[0].startswith(f"Done: {runs} report runs, {runs} completed with Gate B passed, 0 failed;"), tail
    assert "Next:" in tail and any("nexus-reports runs show " in line for line in tail)
    # issue 13: it ends with the path of the evidence pack it built (incomplete here: no `make test` results)
    assert lines[-1].startswith("evidence pack: ") and "7 Test evidence package (missing)" in lines[-1], lines[-1]
    pack = Path(lines[-1].split(": ", 1)[1].split(" (", 1)[0])
    assert len(list(pack.glob("0?_*.md"))) == 9 and (pack / "evidence_pack.pdf").read_bytes().startswith(b"%PDF")
    api = next(line for line in first.stdout.splitlines() if line.startswith("Reporting API:"))
    assert "6 system entities" in api and ": completed," in api, api
    assert "TOKEN=nxr_" in first.stdout and "/download?format=xlsx" in first.stdout

    home = Path(demo_env["NEXUS_HOME"]) / "artifacts"
    manifests = sorted(home.glob("*/incident_summary/*/*/manifest.json"))
    assert len(manifests) == 2
    for manifest in manifests:
        assert local_store.LocalStore(manifest.parent.parent).verify(manifest.parent.name) == []

    second = run_cli(demo_env, "demo", "--tenants", "2", "--incidents", "3000")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    manifests_after = sorted(home.glob("*/incident_summary/*/*/manifest.json"))
    assert len(manifests_after) == 4  # new runs, same data
    hashes = {}
    for manifest in manifests_after:
        data = local_store.LocalStore(manifest.parent.parent).read_manifest(manifest.parent.name)
        hashes.setdefault(data["tenant_id"], set()).add(data["input_hash"])
        csv_sha = next(f["sha256"] for f in data["files"] if f["format"] == "csv")
        hashes.setdefault(data["tenant_id"] + ":csv", set()).add(csv_sha)
    # idempotent: the same request, the same input hash and byte-identical CSV both times
    assert all(len(v) == 1 for v in hashes.values()), hashes


def test_demo_publishes_to_s3_when_an_endpoint_is_configured(demo_env, tmp_path_factory):
    """The same demo against a local S3 endpoint (moto in server mode over HTTP)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = {"REPORTS_S3_ENDPOINT": f"http://{host}:{port}", "REPORTS_S3_BUCKET": "demo-reports",
              "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        proc = run_cli({**demo_env, **s3}, "demo", "--tenants", "1", "--incidents", "1000")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "created bucket demo-reports" in proc.stdout and "artifact store: S3 s3://demo-reports" in proc.stdout
        client = boto3.client("s3", endpoint_url=s3["REPORTS_S3_ENDPOINT"], region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket="demo-reports")
                for o in page.get("Contents", [])]
        manifests = [k for k in keys if k.endswith("/manifest.json")]
        standard = [k for k in manifests if not k.split("/")[1].startswith("rdef_")]
        assert len(standard) == len(templates.load_all())  # every template, one tenant
        assert len(manifests) - len(standard) == 1  # and the Reporting API definition's run
        assert not [k for k in keys if "/.staging-" in k]
    finally:
        server.stop()
