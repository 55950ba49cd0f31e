"""Counts over the whole control schema for the live metrics (/metrics): read at scrape time,
so every process (API, Dagster workers, the CLI) is counted, not only the one scraped. Run
records are read through orchestration/runs/records.py."""

from __future__ import annotations

from dataclasses import dataclass

from orchestration.runs import records


@dataclass(frozen=True)
class Counts:
    runs: list[tuple[str, str, str, str, int]]  # tenant, template, state, failure class or '', runs
    timings: list[tuple[str, float | None, float | None]]  # template, runtime seconds, schedule lag seconds
    deliveries: list[tuple[str, str, int]]  # channel, status, rows
    links_created: list[tuple[str, int]]  # tenant, links
    link_requests: list[tuple[str, str, int]]  # outcome, reason, requests


def read(conn) -> Counts:
    """Everything in one read-only transaction (the caller's, begun here), so the numbers agree."""
    with conn.cursor() as cur:
        cur.execute("set transaction read only")
    runs = records.count_by_state(conn)
    timings = records.ended_run_timings(conn)
    with conn.cursor() as cur:
        cur.execute("select channel, status, count(*) from control.deliveries group by 1, 2 order by 1, 2")
        deliveries = [tuple(r) for r in cur.fetchall()]
        cur.execute("select tenant_id, count(*) from control.links group by 1 order by 1")
        links = [tuple(r) for r in cur.fetchall()]
        cur.execute("select outcome, reason, count(*) from control.access_events group by 1, 2 order by 1, 2")
        requests = [tuple(r) for r in cur.fetchall()]
    return Counts(runs, timings, deliveries, links, requests)
