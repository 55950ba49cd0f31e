"""Deterministic sample SOC source data, streamed into `raw` with COPY.

The same arguments always give byte-identical tables: every random choice comes from a
`random.Random` seeded by the arguments (one stream per table), never from the clock or the
global generator. Rows are generated lazily, formatted as CSV in chunks of about 1 MB and fed
to `COPY ... FROM STDIN` by a small reader whose `read()` pulls the next chunk, so a million
incidents never sit in memory; the server parses one chunk while Python formats the next.
The hot loops format precomputed strings (quoted titles, per-day date prefixes, all 86,400
times of day) and draw weighted choices from lookup tables, so 1,000,000 incidents with their
alerts load in seconds.

The story the data tells, as of "now" = midnight UTC at the start of `end_date`:

* incidents open over the 182 days before `end_date`, more on weekdays and in European/US
  working hours, slowly growing, with a few campaign bursts; ids follow opening time;
* tenants differ in volume, technique mix and response speed; acknowledge and resolve delays
  are lognormal around a fraction of the SLA, so some incidents breach it; recent incidents
  are still new or open, and a small backlog never gets resolved;
* each incident has 1-3 alerts raised shortly before it opened, plus alerts that were never
  escalated (about 20% of all alerts); hourly connector health over the last 30 days with
  outage streaks; compliance evidence collected on a cadence, older evidence expired;
* each tenant works in 2-3 verticals at sites across regions; every incident, alert, connector
  and control belongs to a vertical and a region, ~40% of incidents concern a subject, a few are
  suspended; subjects have consent histories (some withdrawn) and awareness measurements.
  These columns come from streams of their own (sample_data/programmes.py): adding them left
  every earlier value as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

from orchestration.dev.sample_data.copy_stream import copy_rows, csv_chunks, encode_chunks
from orchestration.dev.sample_data.incidents import ALERT_COLUMNS, INCIDENT_COLUMNS, alert_lines, incident_lines
from orchestration.dev.sample_data.subjects import (
    AWARENESS_COLUMNS,
    CONSENT_COLUMNS,
    SITE_COLUMNS,
    SUBJECT_COLUMNS,
    awareness_rows,
    consent_rows,
    site_rows,
    subject_rows,
)
from orchestration.dev.sample_data.tables import (
    HEALTH_COLUMNS,
    analyst_rows,
    connector_rows,
    control_rows,
    detection_rows,
    evidence_rows,
    health_lines,
    tenant_rows,
)
from orchestration.dev.sample_data.vocabulary import TECHNIQUES, tenant_ids
from orchestration.dev.sample_data.world import World

__all__ = ["RAW_SCHEMA_SQL", "TABLES", "default_end_date", "loads", "seed", "tenant_ids"]

RAW_SCHEMA_SQL = Path(__file__).with_name("raw_schema.sql")
TABLES = ["tenants", "analysts", "attack_techniques", "incidents", "alerts", "detections", "connectors",
          "connector_health_events", "compliance_controls", "compliance_evidence", "sites", "subjects",
          "consent_events", "awareness_measurements"]



def default_end_date(today: dt.date | None = None) -> dt.date:
    """Today (UTC): the data ends at midnight, so the last complete day, week and month all have data."""
    today = today or dt.datetime.now(dt.UTC).date()
    return dt.date(today.year, today.month, today.day)



def loads(world: World, incidents: int) -> list[tuple[str, list[str], Callable[[], Iterator[bytes]]]]:
    return [
        ("tenants", ["tenant_id", "name", "plan", "timezone", "created_at", "_loaded_at"],
         lambda: csv_chunks(tenant_rows(world))),
        ("analysts", ["analyst_id", "tenant_id", "name", "email", "team", "hired_at", "_loaded_at"],
         lambda: csv_chunks(analyst_rows(world))),
        ("attack_techniques", ["technique_id", "name", "tactic"],
         lambda: csv_chunks(t[:3] for t in TECHNIQUES)),
        ("incidents", INCIDENT_COLUMNS, lambda: encode_chunks(incident_lines(world, incidents))),
        ("alerts", ALERT_COLUMNS, lambda: encode_chunks(alert_lines(world, incidents))),
        ("detections", ["detection_id", "tenant_id", "technique_id", "name", "enabled", "created_at", "_loaded_at"],
         lambda: csv_chunks(detection_rows(world))),
        ("connectors", ["connector_id", "tenant_id", "name", "kind", "created_at", "_loaded_at", "vertical", "region"],
         lambda: csv_chunks(connector_rows(world))),
        ("connector_health_events", HEALTH_COLUMNS, lambda: encode_chunks(health_lines(world))),
        ("compliance_controls", ["tenant_id", "control_id", "framework", "title", "owner_id", "_loaded_at",
                                 "vertical", "region"],
         lambda: csv_chunks(control_rows(world))),
        ("compliance_evidence", ["evidence_id", "tenant_id", "control_id", "collected_at", "status",
                                 "reviewer_id", "_loaded_at"],
         lambda: csv_chunks(evidence_rows(world))),
        ("sites", SITE_COLUMNS, lambda: csv_chunks(site_rows(world))),
        ("subjects", SUBJECT_COLUMNS, lambda: csv_chunks(subject_rows(world))),
        # event_id is the identity: ids follow load order (the truncate restarts it)
        ("consent_events", CONSENT_COLUMNS, lambda: csv_chunks(consent_rows(world))),
        ("awareness_measurements", AWARENESS_COLUMNS, lambda: csv_chunks(awareness_rows(world))),
    ]


def seed(conn, *, tenants: int = 3, incidents: int = 20_000, seed: int = 42,
         end_date: dt.date | None = None) -> dict[str, int]:
    """Replace the raw tables with deterministic sample data; returns rows per table.

    Creates the raw tables if missing (raw_schema.sql), truncates them and loads everything
    with COPY in one transaction, then commits: a reader sees the old data or the new, and a
    second call with the same arguments leaves exactly the same rows. Data ends just before
    midnight UTC of `end_date` (default: the first day of the current month).
    """
    if not isinstance(tenants, int) or tenants < 1:
        raise ValueError(f"tenants must be a positive integer, got {tenants!r}")
    if not isinstance(incidents, int) or incidents < 0:
        raise ValueError(f"incidents must be a non-negative integer, got {incidents!r}")
    end = end_date or default_end_date()
    end = dt.date(end.year, end.month, end.day)  # a datetime counts as its date
    world = World(tenants, seed, end)
    counts: dict[str, int] = {}
    with conn:
        with conn.cursor() as cur:
            cur.execute("create schema if not exists raw")
            cur.execute(RAW_SCHEMA_SQL.read_text(encoding="utf-8"))
            cur.execute("truncate " + ", ".join(f"raw.{t}" for t in TABLES) + " restart identity")
            cur.execute("set local client_encoding = 'UTF8'")  # the chunks are UTF-8 bytes
            for table, columns, chunks in loads(world, incidents):
                counts[table] = copy_rows(cur, table, columns, chunks())
            for table in TABLES:
                cur.execute(f"analyze raw.{table}")
    return counts
