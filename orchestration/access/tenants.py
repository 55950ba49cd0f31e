"""Tenants: the ids the product knows, read from the source tenants table."""

from __future__ import annotations

from collections.abc import Iterable


def list_tenant_ids(conn) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("select tenant_id from raw.tenants order by tenant_id")
        return [row[0] for row in cur.fetchall()]


def partition_changes(current: Iterable[str], existing: Iterable[str]) -> tuple[list[str], list[str]]:
    """(to add, to remove) so the partitions equal the tenants."""
    current, existing = set(current), set(existing)
    return sorted(current - existing), sorted(existing - current)
