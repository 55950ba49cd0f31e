"""Tenants: the ids the product knows, read from the source tenants table."""

from __future__ import annotations

from collections.abc import Iterable

# The platform partition: the tenant id of platform-wide rows (the KPI models' platform rows,
# dbt var platform_tenant) and of runs of platform-wide templates (`scope: platform`). Only a
# principal of every tenant ('*', which only a platform admin grants) or a platform admin is a
# member of it, so no tenant's principal may run or read what runs there. No source tenant may
# take this id (partition_changes leaves it out).
PLATFORM = "platform"


def list_tenant_ids(conn) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("select tenant_id from raw.tenants order by tenant_id")
        return [row[0] for row in cur.fetchall()]


def partition_changes(current: Iterable[str], existing: Iterable[str]) -> tuple[list[str], list[str]]:
    """(to add, to remove) so the partitions equal the tenants; a source tenant named like the
    platform partition never becomes a tenant partition (its reports would read the platform's rows)."""
    current, existing = set(current) - {PLATFORM}, set(existing)
    return sorted(current - existing), sorted(existing - current)
