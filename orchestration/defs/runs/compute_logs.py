"""Dagster's compute logs (a run's stdout and stderr, shown in the UI), without the console mirror in the pool.

Dagster's LocalComputeLogManager writes a step's stdout and stderr to files and, to echo them on
the process's console as well, starts four processes per capture: two `tail -F` and two Python
watchers that kill the tails should the run's process die. For a run in a process of its own
that is noise; for a warm pool worker executing a run every second or two it is about a tenth
of the run's CPU (each watcher is a new Python interpreter), and nobody reads the pool's console
for a run's output: the UI reads the files. This manager writes the same files in the same
place, so the UI shows the same logs; with `mirror` off (the pool's workers turn it off for
themselves) it starts no process. Everywhere else it mirrors as Dagster's does: a run executed in
process by a command (the demo) echoes its output where that command's stdout goes.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Sequence
from contextlib import contextmanager

from dagster._core.execution.compute_logs import redirect_to_file
from dagster._core.storage.compute_log_manager import CapturedLogContext, ComputeIOType
from dagster._core.storage.local_compute_log_manager import IO_TYPE_EXTENSION, LocalComputeLogManager
from dagster._utils import ensure_file, touch_file


class CapturedComputeLogManager(LocalComputeLogManager):
    """LocalComputeLogManager's files; without `mirror`, written by redirecting the streams only."""

    mirror = True  # echo a capture on this process's stdout/stderr too (Dagster's way: four processes)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> CapturedComputeLogManager:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def capture_logs(self, log_key: Sequence[str]) -> Generator[CapturedLogContext, None, None]:
        if self.mirror:
            with super().capture_logs(log_key) as context:
                yield context
            return
        outpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDOUT])
        errpath = self.get_captured_local_path(log_key, IO_TYPE_EXTENSION[ComputeIOType.STDERR])
        ensure_file(outpath)
        ensure_file(errpath)
        with redirect_to_file(sys.stdout, outpath), redirect_to_file(sys.stderr, errpath):
            yield CapturedLogContext(log_key)
        touch_file(self.complete_artifact_path(log_key))  # as the parent class: capture complete
