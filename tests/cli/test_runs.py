"""Ad-hoc runs as a user makes them: `nexus-reports run|runs`, and the report_run job the
Launchpad shows, against the test warehouse."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import dagster as dg
import pytest

from orchestration.dev import faults
from orchestration.runs import records
from tests.conftest import PERIOD
from tests.helpers.cli import invoke as cli


def run_id_of(out: str) -> str:
    return next(line.split()[1] for line in out.splitlines() if line.startswith("run "))


def test_run_with_wait_shows_progress_and_ends_with_the_files(built):
    before = time.monotonic()
    proc = cli("run", "incident_summary", "--tenant", "acme", "--from", "2026-06-01", "--to", "2026-06-14",
               "--format", "pdf,csv", "--as", "analyst@acme.example", "--wait")
    took = time.monotonic() - before
    assert proc.exit_code == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("run ") and "queued" in lines[0] and "2026-06-01..2026-06-15" in lines[0]
    # issue 14: the time the user waited (this command's), then each file with format, variant, rows, size
    done = next(i for i, line in enumerate(lines) if line.startswith("completed in "))
    waited, own = re.match(r"completed in ([\d.]+)s \(the run itself ([\d.]+)s\): ", lines[done]).groups()
    assert float(own) <= float(waited) <= took + 0.05  # printed to a tenth: rounding may add up to 0.05
    location = Path(lines[done].split("): ", 1)[1])
    stem = "acme_incident_summary_2026-06-01_2026-06-15_internal"  # a window that is not a period: from_to
    assert sorted(p.name for p in location.iterdir()) == [f"{stem}_INTERNAL.pdf", f"{stem}_summary_by_severity_INTERNAL.csv",
                                                         "manifest.json", "manifest.sig.json"]
    manifest = json.loads((location / "manifest.json").read_text())
    assert lines[done + 1].split() == ["file", "format", "variant", "rows", "size"]
    listed = [line.split() for line in lines[done + 2:]]
    assert sorted((row[0], row[1], row[2], row[3]) for row in listed) == sorted(
        (f["name"], f["format"], "internal", f"{f['rows']:,}") for f in manifest["files"])
    run_id = run_id_of(proc.stdout)

    listed = cli("runs", "list", "--tenant", "acme")
    assert run_id in listed.stdout and "completed" in listed.stdout
    shown = cli("runs", "show", run_id)
    assert "state         completed" in shown.stdout and str(location) in shown.stdout
    assert "Dagster run " in shown.stdout and "(Dagster run -)" not in shown.stdout  # it ran through Dagster


@pytest.mark.parametrize("args,message", [
    (["--period", PERIOD, "--format", "docx"], "not offered"),
    (["--period", PERIOD, "--filter", "colour=red"], "has no filter colour"),
    (["--from", "2026-06-10", "--to", "2026-06-01"], "is before"),
    (["--period", PERIOD, "--from", "2026-06-01", "--to", "2026-06-02"], "either --period or --from"),
])
def test_bad_runs_are_one_line_errors(built, args, message):
    proc = cli("run", "incident_summary", "--tenant", "acme", *args, "--as", "analyst@acme.example")
    assert proc.exit_code == 1 and message in proc.stderr and "Traceback" not in proc.stderr


def test_unauthorized_requester_is_refused_and_recorded(built):
    proc = cli("run", "incident_summary", "--tenant", "acme", "--period", PERIOD, "--as", "analyst@globex.example")
    assert proc.exit_code == 1 and "policy_violation" in proc.stderr and "not a member of tenant acme" in proc.stderr
    run_id = proc.stderr.split("run ", 1)[1].split()[0]
    assert f"run {run_id} refused (policy_violation)" in proc.stderr
    listed = next(line for line in cli("runs", "list", "-n", "200").stdout.splitlines() if line.startswith(run_id))
    assert listed.endswith("refused (policy_violation)"), listed  # issue 14: shown as refused, not as failed
    assert "state         refused at stage" in cli("runs", "show", run_id).stdout


def test_cancel_from_the_cli_leaves_nothing(built, conn):
    env = {faults.ENV: "render:sleep=60"}
    started = cli("run", "sla_performance", "--tenant", "globex", "--period", PERIOD, "--as", "manager@globex.example",
                  env=env)
    assert started.exit_code == 0, started.stderr
    run_id = run_id_of(started.stdout)
    deadline = time.monotonic() + 120
    while records.get_run(conn, run_id).stage != "render":
        assert time.monotonic() < deadline, records.get_run(conn, run_id)
        time.sleep(0.3)
    refused = cli("runs", "cancel", run_id, "--as", "viewer@globex.example")
    assert refused.exit_code == 1 and "may not run" in refused.stderr
    cancelled = cli("runs", "cancel", run_id, "--as", "manager@globex.example", "--wait")
    assert cancelled.exit_code == 0 and f"run {run_id}: cancelled" in cancelled.stdout, cancelled.stdout + cancelled.stderr
    record = records.get_run(conn, run_id)
    assert (record.state, record.failure_class, record.snapshot_state) == ("cancelled", "cancelled", "abandoned")
    assert record.artifact_location is None
    assert not any(p.name.endswith(run_id) for p in Path(os.environ["NEXUS_HOME"]).rglob(f"*{run_id}*"))


def test_the_launchpad_job_runs_an_ad_hoc_window(built, conn):
    from orchestration.definitions import defs

    config = {"template": "attack_coverage", "tenant": "initech", "date_from": "2026-06-08", "date_to": "2026-06-21",
              "formats": ["json"], "requester": "analyst@initech.example"}
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("report_run").execute_in_process(
            run_config={"ops": {"execute_report_run": {"config": config}}}, instance=instance)
        assert result.success
        # issue 14: a window that is not a partition is an observation in the published asset's history
        observed = [e.event_specific_data.asset_observation for e in result.all_events
                    if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION]
        materialized = result.get_asset_materialization_events()
    location = Path(result.output_for_node("execute_report_run"))
    assert sorted(p.name for p in location.iterdir()) == ["initech_attack_coverage_2026-06-08_2026-06-22_internal_INTERNAL.json",
                                                          "manifest.json", "manifest.sig.json"]
    record = records.run_for_dagster_run(conn, result.run_id, "attack_coverage")
    assert (str(record.window_start), str(record.window_end)) == ("2026-06-08", "2026-06-22")
    assert not materialized and len(observed) == 1
    assert observed[0].asset_key == dg.AssetKey(["attack_coverage", "published"]) and observed[0].partition is None
    assert observed[0].metadata["report_run_id"].value == record.run_id


def test_an_ad_hoc_period_run_materializes_its_partition_of_the_published_asset(built, conn):
    from orchestration.definitions import defs

    config = {"template": "attack_coverage", "tenant": "initech", "period": PERIOD, "formats": ["csv"],
              "requester": "analyst@initech.example"}
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("report_run").execute_in_process(
            run_config={"ops": {"execute_report_run": {"config": config}}}, instance=instance)
        assert result.success
        key = dg.AssetKey(["attack_coverage", "published"])
        [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
        assert event.partition == f"{PERIOD}-01|initech"  # Dagster's key for the CLI's --period 2026-06
        history = instance.fetch_materializations(key, limit=10).records
        assert [r.partition_key for r in history] == [f"{PERIOD}-01|initech"]
    record = records.run_for_dagster_run(conn, result.run_id, "attack_coverage")
    assert event.materialization.metadata["report_run_id"].value == record.run_id
    files = event.materialization.metadata["files"].value.records
    assert [(r.data["format"], r.data["rows"]) for r in files] == [("csv", record.row_counts["technique_coverage"])]


def test_the_launchpad_job_refuses_a_missing_requester(built):
    from orchestration.definitions import defs

    config = {"template": "attack_coverage", "tenant": "initech", "period": PERIOD}
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("report_run").execute_in_process(
            run_config={"ops": {"execute_report_run": {"config": config}}}, instance=instance, raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("execute_report_run")
    # issue 14: a missing requester is named as such, with what to set (was "unknown principal")
    assert "refused: no requester: set `requester` in the run config" in failure.error.message
