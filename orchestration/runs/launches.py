"""Work handed to the warm worker pool, and whether a pool is there: the only SQL on
`control.run_launches` and `control.pool_processes` (migration 0019).

Two kinds of launch. `submit`: a run the CLI or the API admitted; the pool's submitter turns it
into a Dagster `report_run` run and submits it to Dagster's run queue (so the queue's limits and
priorities apply to it as to any run). `execute`: a Dagster run the daemon dequeued and the run
launcher (defs/runs/launcher.py) handed over; a warm worker executes it. Every write commits at
once: other processes wait on these rows.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass

# Postgres NOTIFY channel: a pool process LISTENs and wakes at once instead of polling.
CHANNEL = "nexus_run_launches"
# A pool process beats every few seconds; one silent longer than this is gone.
HEARTBEAT_TOLERANCE = dt.timedelta(seconds=20)
# Ad-hoc runs (CLI, API) go before a fan-out's, in Dagster's queue (the dagster/priority tag) and here.
AD_HOC_PRIORITY = 10


@dataclass(frozen=True)
class Launch:
    launch_id: int
    kind: str
    report_run_id: str | None
    dagster_run_id: str | None
    priority: int


def enqueue(conn, kind: str, *, report_run_id: str | None = None, dagster_run_id: str | None = None,
            priority: int = 0) -> int:
    with conn.cursor() as cur:
        cur.execute("""insert into control.run_launches (kind, report_run_id, dagster_run_id, priority)
                       values (%s, %s, %s, %s) returning launch_id""", (kind, report_run_id, dagster_run_id, priority))
        launch_id = cur.fetchone()[0]
        cur.execute(f"notify {CHANNEL}, %s", (kind,))
    conn.commit()
    return launch_id


def claim(conn, kind: str) -> Launch | None:
    """The next unclaimed launch of this kind for this process (highest priority, then oldest)."""
    with conn.cursor() as cur:
        cur.execute(
            """update control.run_launches set claimed_at = now(), claimed_pid = %s, claimed_host = %s
                where launch_id = (select launch_id from control.run_launches
                                    where kind = %s and claimed_at is null
                                    order by priority desc, launch_id limit 1 for update skip locked)
            returning launch_id, kind, report_run_id, dagster_run_id, priority""",
            (os.getpid(), socket.gethostname(), kind))
        row = cur.fetchone()
    conn.commit()
    return Launch(*row) if row else None


def finish(conn, launch_id: int, outcome: str) -> None:
    with conn.cursor() as cur:
        cur.execute("update control.run_launches set done_at = now(), outcome = %s where launch_id = %s",
                    (outcome[:500], launch_id))
    conn.commit()


def release_claims_of(conn, host: str, pid: int) -> int:
    """Launches claimed by a pool process that is gone and never finished them go back to the
    queue (a worker recycled or killed between claiming and finishing; see pool.execute for a
    run it had started)."""
    with conn.cursor() as cur:
        cur.execute("""update control.run_launches set claimed_at = null, claimed_pid = null, claimed_host = null
                        where claimed_host = %s and claimed_pid = %s and done_at is null""", (host, pid))
        count = cur.rowcount
    conn.commit()
    return count


def beat(conn, role: str, *, runs_done: int = 0, queue_ok: bool = False) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """insert into control.pool_processes (pid, host, parent_pid, role, runs_done, queue_ok)
               values (%s, %s, %s, %s, %s, %s)
               on conflict (host, pid) do update set heartbeat_at = now(), role = excluded.role,
                   parent_pid = excluded.parent_pid, runs_done = excluded.runs_done, queue_ok = excluded.queue_ok""",
            (os.getpid(), socket.gethostname(), os.getppid(), role, runs_done, queue_ok))
    conn.commit()


def leave(conn, pid: int | None = None) -> None:
    """A pool process of this host (default: this one) is gone."""
    with conn.cursor() as cur:
        cur.execute("delete from control.pool_processes where host = %s and pid = %s",
                    (socket.gethostname(), pid or os.getpid()))
    conn.commit()


def forget_pool(conn, parent_pid: int) -> None:
    """A stopped pool's processes (the children of `parent_pid` on this host) are no pool any more."""
    with conn.cursor() as cur:
        cur.execute("delete from control.pool_processes where host = %s and parent_pid = %s",
                    (socket.gethostname(), parent_pid))
    conn.commit()


@dataclass(frozen=True)
class PoolState:
    submitters: int  # live submitters that see a live Dagster queue (daemon)
    workers: int

    @property
    def ready(self) -> bool:
        return self.submitters > 0 and self.workers > 0


def pool_state(conn) -> PoolState:
    """Live pool processes (a heartbeat within HEARTBEAT_TOLERANCE). No pool table yet (an
    instance not migrated to 0019) reads as no pool."""
    with conn.cursor() as cur:
        cur.execute("select to_regclass('control.pool_processes') is not null")
        if not cur.fetchone()[0]:
            conn.rollback()
            return PoolState(0, 0)
        cur.execute("""select count(*) filter (where role = 'submitter' and queue_ok), count(*) filter (where role = 'worker')
                         from control.pool_processes where heartbeat_at > now() - %s""", (HEARTBEAT_TOLERANCE,))
        submitters, workers = cur.fetchone()
    conn.commit()
    return PoolState(submitters, workers)
