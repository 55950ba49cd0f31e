"""Running the command line in tests: in process (CliRunner) by default, as a process only when
the test is about the process itself (the installed script, a detached worker, exit codes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from orchestration.settings import REPO_ROOT

SCRIPT = str(Path(sys.executable).parent / "nexus-reports")


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """`nexus-reports ARGS` in this process: result.exit_code, .stdout, .stderr, .output (both)."""
    from orchestration.cli.main import main

    return CliRunner().invoke(main, [str(a) for a in args], env=env, prog_name="nexus-reports")


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 240,
        script: list[str] | None = None) -> subprocess.CompletedProcess:
    """`nexus-reports ARGS` as its own process (the installed script, or `script` such as
    [python, -m, orchestration.cli]): .returncode, .stdout, .stderr."""
    return subprocess.run([*(script or [SCRIPT]), *map(str, args)], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def one_line_error(text: str) -> str:
    """The error a refused command printed, asserting it is exactly one line and no traceback."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert "Traceback" not in text, text
    assert len(lines) == 1 and lines[0].startswith("Error: "), text
    return lines[0]
