"""Fault injection points for the run engine's failure tests.

`NEXUS_FAULTS` lists faults as `stage:action[=arg]`, comma separated, e.g.
`render:kill`, `render:sleep=30`, `snapshot_query:drop_connection`, `render:drop_all_connections`,
`publish:storage`. Each fires once
per process at the named stage. Unset (always, outside tests) it costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
import time

ENV = "NEXUS_FAULTS"
_fired: set[str] = set()


class InjectedStorageFailure(OSError):
    """The artifact store refusing a write, on purpose."""


def _parse(spec: str) -> dict[str, tuple[str, str]]:
    faults = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        stage, _, action = item.partition(":")
        name, _, arg = action.partition("=")
        faults[stage] = (name, arg)
    return faults


def hit(stage: str, **context) -> None:
    """Called by the pipeline at each stage; does what NEXUS_FAULTS asks for this stage, once."""
    spec = os.environ.get(ENV)
    if not spec or stage in _fired:
        return
    fault = _parse(spec).get(stage)
    if fault is None:
        return
    _fired.add(stage)
    name, arg = fault
    if name == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif name == "sleep":
        deadline = time.monotonic() + float(arg or 30)
        while time.monotonic() < deadline:  # short sleeps: signals (cancel, timeout) get through
            time.sleep(0.05)
    elif name == "storage":
        raise InjectedStorageFailure(28, "No space left on device (injected)")
    elif name in ("drop_connection", "drop_all_connections"):
        # Kill server backends from outside, as a failover or a network cut would: the reader's
        # (drop_connection), or every connection the run holds (drop_all_connections: a restart).
        from orchestration.db.warehouse import connection

        pids = [context["backend_pid"]] if name == "drop_connection" else [
            p for p in (context.get("backend_pid"), context.get("admin_pid")) if p]
        with connection() as admin, admin.cursor() as cur:
            for pid in pids:
                cur.execute("select pg_terminate_backend(%s)", (pid,))
            admin.commit()
    else:
        raise ValueError(f"unknown fault {name!r} in {ENV}")


def reset() -> None:
    _fired.clear()
