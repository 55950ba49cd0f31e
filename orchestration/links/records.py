"""Links and access events in control.links / control.access_events, typed: the only SQL on them.

What a link belongs to (template, version) is read from the run records through
orchestration/runs/records.py, the only module with SQL on run records. Every function runs in
the caller's transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from orchestration.db.rows import from_row
from orchestration.db.warehouse import dict_rows
from orchestration.runs import records as run_records


@dataclass(frozen=True)
class Link:
    """One link (never its token); template and status are filled in by list_links."""

    link_id: int
    run_id: str
    variant: str
    format: str
    principal_id: str
    tenant_id: str
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    template_key: str | None = None
    template_version: int | None = None
    downloads: int = 0
    status: str | None = None


@dataclass(frozen=True)
class AccessEvent:
    """One request that presented a token: granted or denied, and why."""

    event_id: int
    at: dt.datetime
    link_id: int | None
    principal_id: str | None
    tenant_id: str | None
    run_id: str | None
    outcome: str
    reason: str
    remote_addr: str | None


def status(link: Link, now: dt.datetime) -> str:
    if link.revoked_at is not None:
        return "revoked"
    return "expired" if now >= link.expires_at else "active"


def by_token_hash(conn, digest: str) -> Link | None:
    with conn.cursor() as cur:
        cur.execute("select * from control.links where token_sha256 = %s", (digest,))
        rows = dict_rows(cur)
    return from_row(Link, rows[0]) if rows else None


def tenant_and_creator(conn, link_id: int) -> tuple[str, str] | None:
    with conn.cursor() as cur:
        cur.execute("select tenant_id, created_by from control.links where link_id = %s", (link_id,))
        return cur.fetchone()


def insert(cur, *, digest: str, run_id: str, variant: str, fmt: str, principal_id: str, tenant_id: str,
           created_by: str, created_at: dt.datetime, expires_at: dt.datetime) -> int:
    """A new link in the caller's transaction; its id."""
    cur.execute(
        """insert into control.links (token_sha256, run_id, variant, format, principal_id, tenant_id,
                                      created_by, created_at, expires_at)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s) returning link_id""",
        (digest, run_id, variant, fmt, principal_id, tenant_id, created_by, created_at, expires_at),
    )
    return cur.fetchone()[0]


# What a revocation may select by: column -> SQL condition (never user text in the SQL).
REVOKE_BY = {
    "link": "link_id = %s",
    "run": "run_id = %s",
    "tenant": "tenant_id = %s",
    "runs": "run_id = any(%s)",
    "runs_of_tenant": "run_id = any(%s) and tenant_id = %s",
}


def revoke(cur, by: str, params: tuple, *, now: dt.datetime, actor: str, reason: str) -> list[int]:
    """Revoke the links not yet revoked that `REVOKE_BY[by]` selects, in the caller's transaction."""
    cur.execute(
        f"""update control.links set revoked_at = %s, revoked_by = %s, revoke_reason = %s
            where revoked_at is null and {REVOKE_BY[by]}
            returning link_id""",
        (now, actor, reason, *params),
    )
    return sorted(r[0] for r in cur.fetchall())


def insert_access_event(cur, *, now: dt.datetime, link: Link | None, outcome: str, reason: str,
                        remote_addr: str | None) -> None:
    cur.execute(
        """insert into control.access_events (at, link_id, principal_id, tenant_id, run_id, outcome, reason, remote_addr)
           values (%s, %s, %s, %s, %s, %s, %s, %s)""",
        (now, link.link_id if link else None, link.principal_id if link else None, link.tenant_id if link else None,
         link.run_id if link else None, outcome, reason, remote_addr),
    )


def list_links(conn, *, tenant_id: str | None = None, run_id: str | None = None,
               now: dt.datetime) -> list[Link]:
    """Links (newest first) with their template and status; never their token."""
    with conn.cursor() as cur:
        cur.execute(
            """select l.link_id, l.run_id, l.variant, l.format, l.principal_id, l.tenant_id, l.created_by,
                      l.created_at, l.expires_at, l.revoked_at, l.revoked_by, l.revoke_reason,
                      (select count(*) from control.access_events e
                        where e.link_id = l.link_id and e.outcome = 'granted') as downloads
               from control.links l
               where (%s::text is null or l.tenant_id = %s) and (%s::text is null or l.run_id = %s)
               order by l.link_id desc""",
            (tenant_id, tenant_id, run_id, run_id),
        )
        rows = dict_rows(cur)
    templates = run_records.template_versions(conn, sorted({r["run_id"] for r in rows}))
    links = [from_row(Link, r, template_key=templates[r["run_id"]][0], template_version=templates[r["run_id"]][1])
             for r in rows]
    return [dataclasses.replace(link, status=status(link, now)) for link in links]


def access_events(conn, *, link_id: int | None = None, run_id: str | None = None) -> list[AccessEvent]:
    with conn.cursor() as cur:
        cur.execute(
            """select * from control.access_events
               where (%s::bigint is null or link_id = %s) and (%s::text is null or run_id = %s)
               order by event_id""",
            (link_id, link_id, run_id, run_id),
        )
        return [from_row(AccessEvent, r) for r in dict_rows(cur)]
