"""The daemon and the warm worker pool for a benchmark (`bench run`, `bench fanout`): started as
processes of their own, as in production, or the ones already running (`nexus-reports dev`); and
what the pool's workers hold in memory, sampled from /proc."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from orchestration.db import warehouse

Echo = Callable[[str], None]


class PoolWatch:
    """The pool workers' peak RSS (VmHWM) and their largest private memory (USS: what a worker
    holds that is not shared with the pool's warm parent and its siblings), sampled from /proc
    while they live (a recycled worker's peak is seen before it leaves, at one-second resolution)."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self.private_mb = 0.0

    def sample(self) -> None:
        with warehouse.connection() as conn, conn.cursor() as cur:
            cur.execute("select pid from control.pool_processes where role = 'worker'")
            pids = [r[0] for r in cur.fetchall()]
        for pid in pids:
            self.peak_mb = max(self.peak_mb, _proc_kb(f"/proc/{pid}/status", ("VmHWM:",)) / 1024)
            self.private_mb = max(self.private_mb,
                                  _proc_kb(f"/proc/{pid}/smaps_rollup", ("Private_Clean:", "Private_Dirty:")) / 1024)


def _proc_kb(path: str, fields: tuple[str, ...]) -> int:
    """The sum of these kB fields of a /proc file (0 when the process is gone)."""
    try:
        with open(path) as fh:
            return sum(int(line.split()[1]) for line in fh if line.startswith(fields))
    except OSError:
        return 0


@contextlib.contextmanager
def pool_and_daemon(processes: int, echo: Echo = print, *, pool_env: dict[str, str] | None = None):
    """`nexus-reports workers`, a code server and `dagster-daemon run` as child processes, until
    the pool is ready and the daemon serves the queue; all stopped at the end (`pool_env`: the
    pool's environment, e.g. with injected faults for a test).

    The daemon reaches the definitions through one long-lived code server, as under `dagster dev`
    (`nexus-reports dev`) and on a cluster: a daemon given workspace.yaml's module itself starts
    a code server of its own and replaces it every minute (a new process importing everything,
    about a tenth of the machine's CPU during a fan-out)."""
    from orchestration.defs.runs.pool import LOCATION_NAME
    from orchestration.runs import launches
    from orchestration.settings import REPO_ROOT

    with warehouse.connection() as conn:
        if launches.pool_state(conn).workers >= processes and launches.pool_state(conn).ready:
            echo("a worker pool and Dagster's daemon are running already (nexus-reports dev): using them")
            yield PoolWatch()
            return
    bindir = Path(sys.executable).parent
    logs = Path(os.environ.get("NEXUS_HOME") or REPO_ROOT / ".nexus") / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    workspace = logs / "bench-workspace.yaml"
    workspace.write_text(f"load_from:\n  - grpc_server: {{host: 127.0.0.1, port: {port}, location_name: {LOCATION_NAME}}}\n")
    children = [
        subprocess.Popen([str(bindir / "nexus-reports"), "workers", "--processes", str(processes)], env=pool_env,
                         stdout=(logs / "bench-pool.log").open("w"), stderr=subprocess.STDOUT, cwd=REPO_ROOT),
        subprocess.Popen([str(bindir / "dagster"), "code-server", "start", "-m", "orchestration.definitions",
                          "-d", str(REPO_ROOT), "-h", "127.0.0.1", "-p", str(port), "--location-name", LOCATION_NAME],
                         stdout=(logs / "bench-code-server.log").open("w"), stderr=subprocess.STDOUT, cwd=REPO_ROOT),
    ]
    try:
        started = time.perf_counter()
        _wait_for_code_server(port, children, logs, started)
        children.append(subprocess.Popen([str(bindir / "dagster-daemon"), "run", "-w", str(workspace)],
                                         stdout=(logs / "bench-daemon.log").open("w"), stderr=subprocess.STDOUT,
                                         cwd=REPO_ROOT))
        while True:
            with warehouse.connection() as conn:
                state = launches.pool_state(conn)
            if state.ready and state.workers >= processes:
                break
            _check_alive(children, logs, started)
            time.sleep(1.0)
        echo(f"worker pool ({processes} workers), code server and Dagster daemon ready in "
             f"{time.perf_counter() - started:.0f} s")
        yield PoolWatch()
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        with warehouse.connection() as conn:  # whatever the pool could not say on its way out: it is gone
            launches.forget_pool(conn, children[0].pid)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check_alive(children: list[subprocess.Popen], logs: Path, started: float) -> None:
    if any(c.poll() is not None for c in children) or time.perf_counter() - started > 300:
        tails = "; ".join(f"{log.name}: {log.read_text()[-800:]}" for log in sorted(logs.glob("bench-*.log")))
        raise RuntimeError(f"the worker pool, the code server or the daemon did not come up; see {logs}: {tails}")


def _wait_for_code_server(port: int, children: list[subprocess.Popen], logs: Path, started: float) -> None:
    """Until the code server has loaded the definitions (a daemon that finds it loading keeps the
    location in error until its next workspace refresh, a minute later)."""
    from dagster._grpc.client import DagsterGrpcClient

    client = DagsterGrpcClient(port=port, host="127.0.0.1")
    while True:
        try:
            client.list_repositories()
            return
        except Exception:  # noqa: BLE001 - not listening or still loading
            _check_alive(children, logs, started)
            time.sleep(0.5)
