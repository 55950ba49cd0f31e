"""Schedules left by other tests: evaluate() looks at every active schedule, so a test that
evaluates ticks first archives the ones it did not make."""

from __future__ import annotations


def retire_all(conn) -> None:
    with conn, conn.cursor() as cur:
        cur.execute("update control.schedules set state = 'archived' where state <> 'archived'")
