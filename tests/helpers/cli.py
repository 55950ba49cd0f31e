"""The `nexus-reports` command as a separate process, for tests about the CLI process itself
(exit codes, output, entry point); everything else calls the code in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orchestration.settings import REPO_ROOT

CLI = str(Path(sys.executable).parent / "nexus-reports")


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `nexus-reports ARGS` from the repository root; `env` is added to this process's environment."""
    return subprocess.run([CLI, *args], cwd=REPO_ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)
