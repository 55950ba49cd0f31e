"""A run's stdout and stderr reach the files the Dagster UI reads, without a process per capture
(defs/runs/compute_logs.py): Dagster's default starts two `tail` and two Python watchers each time."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster._core.storage.compute_log_manager import ComputeIOType

from orchestration.defs import dagster_home
from orchestration.defs.runs import pool
from orchestration.defs.runs.compute_logs import CapturedComputeLogManager


def _children() -> set[int]:
    found = set()
    for task in Path("/proc/self/task").iterdir():
        found |= {int(pid) for pid in (task / "children").read_text().split()}
    return found


def test_the_instance_keeps_compute_logs_where_dagsters_default_does(fresh_warehouse):
    import dagster as dg

    home = dagster_home.prepare()
    with dg.DagsterInstance.get() as instance:
        manager = instance.compute_log_manager
        assert isinstance(manager, CapturedComputeLogManager)
        assert Path(manager._base_dir) == home / "storage"
        assert manager.mirror  # a command executing a run in process (the demo) still echoes its output
    assert pool.pooled_instance().compute_log_manager.mirror is False


def test_a_capture_writes_both_streams_to_the_ui_files_and_starts_no_process(tmp_path, capfd):
    manager = CapturedComputeLogManager(base_dir=str(tmp_path))
    manager.mirror = False  # as in a pool worker (pool.pooled_instance)
    key = ["a-run-id", "compute_logs", "step"]
    before = _children()
    with capfd.disabled(), manager.capture_logs(key):  # the process's own streams, as in a worker
        during = _children()
        print("from print", flush=True)
        os.write(1, b"from the file descriptor\n")  # what a C library or a subprocess writes
        print("to stderr", file=sys.stderr, flush=True)
    assert during == before  # Dagster's LocalComputeLogManager: four more here
    out = manager.get_log_data(key).stdout.decode()
    assert out == "from print\nfrom the file descriptor\n"
    assert manager.get_log_data(key).stderr.decode() == "to stderr\n"
    assert manager.is_capture_complete(key)
    with manager.open_log_stream(key, ComputeIOType.STDOUT) as stream:  # appending still works
        stream.write("appended\n")
    assert manager.get_log_data(key).stdout.decode().endswith("appended\n")
