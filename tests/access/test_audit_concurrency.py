"""The audit chain under concurrent appends: several processes, each with several threads and
its own connections, append at once (some of them in transactions that roll back, as a request
that fails after auditing does). The committed rows must number exactly what was committed,
carry gapless seq numbers, and `audit verify` must pass.
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid

import psycopg2
import pytest

from orchestration.access import audit
from orchestration.db import warehouse

PROCESSES, THREADS, APPENDS = 4, 5, 5  # 4 processes x 5 threads x 5 appends = 100 committed rows
ROLLBACK_EVERY = 3  # and every 3rd thread also appends a row in a transaction that rolls back


def _appender(dsn: str, marker: str, worker: str, rollback: bool) -> None:
    conn = psycopg2.connect(dsn)
    try:
        for i in range(APPENDS):
            if rollback:  # a caller that audits, then fails: its row must vanish without a trace
                audit.record(conn, actor="svc:test", action="test.rolled_back", target=worker, outcome="failed",
                             correlation_id=marker)
                conn.rollback()
            audit.record_now(conn, actor="svc:test", action="test.concurrent", target=f"{worker}#{i}",
                             outcome="succeeded", correlation_id=marker, details={"worker": worker, "i": i})
    finally:
        conn.close()


def _process(dsn: str, marker: str, p: int) -> None:
    threads = [threading.Thread(target=_appender, args=(dsn, marker, f"p{p}t{t}", (p * THREADS + t) % ROLLBACK_EVERY == 0))
               for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrent_appends_from_processes_and_threads_keep_the_chain(conn, fresh_warehouse):
    dsn, marker = warehouse.database_url(), uuid.uuid4().hex
    with conn, conn.cursor() as cur:
        cur.execute("select coalesce(max(seq), 0) from control.audit_log")
        (before,) = cur.fetchone()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process, args=(dsn, marker, p)) for p in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * PROCESSES

    with conn, conn.cursor() as cur:
        cur.execute("select seq, action, target from control.audit_log where seq > %s order by seq", (before,))
        rows = cur.fetchall()
    mine = [r for r in rows if r[1] == "test.concurrent"]
    assert len(mine) == PROCESSES * THREADS * APPENDS
    assert len({r[2] for r in mine}) == len(mine)
    assert not [r for r in rows if r[1] == "test.rolled_back"]
    assert [r[0] for r in rows] == list(range(before + 1, before + 1 + len(rows)))  # no gaps
    result = audit.verify(conn)
    assert result.ok, result.problem


def test_an_append_in_a_repeatable_read_transaction_is_refused(conn, fresh_warehouse):
    """Its snapshot may predate the lock, so it could chain to a row that is no longer the last."""
    other = warehouse.connect()
    try:
        other.set_session(isolation_level="REPEATABLE READ")
        with other.cursor() as cur:
            cur.execute("select 1")  # the snapshot is taken here
        audit.record_now(conn, actor="svc:test", action="test.meanwhile", target="x", outcome="succeeded")
        with pytest.raises(RuntimeError, match="READ COMMITTED"):
            audit.record(other, actor="svc:test", action="test.stale", target="x", outcome="succeeded")
        other.rollback()
    finally:
        other.close()
    assert audit.verify(conn).ok
