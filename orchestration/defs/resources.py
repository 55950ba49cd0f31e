"""Dagster resources: the warehouse and the artifact store, injected into assets, checks and sensors.

Both read the product's settings (REPORTS_DATABASE_URL, NEXUS_HOME, REPORTS_S3_*), so the same
definitions load on a laptop and on a cluster; nothing in `defs/` opens a connection itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg

from orchestration.artifacts import which_store
from orchestration.artifacts.store import ArtifactStore
from orchestration.db import warehouse


class WarehouseResource(dg.ConfigurableResource):
    """Admin connections to the warehouse (control schema, run records); report queries open
    their own report_reader connections inside the run steps."""

    @contextlib.contextmanager
    def connection(self) -> Iterator:
        with warehouse.connection() as conn:
            yield conn


class ArtifactStoreResource(dg.ConfigurableResource):
    """The artifact store the settings select (local folder or S3)."""

    def store(self) -> ArtifactStore:
        return which_store.get_store()


RESOURCES = {"warehouse": WarehouseResource(), "artifact_store": ArtifactStoreResource()}
