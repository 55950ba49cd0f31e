"""Test session setup: a real PostgreSQL (embedded, or REPORTS_DATABASE_URL), fresh schemas.

The suite never touches the demo's data: NEXUS_HOME points at a temporary folder, and with an
external server our schemas in its database are dropped and recreated at the start.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import pytest

# Fixed, so tests do not depend on today's date: data ends 2026-07-01, reports cover June.
SEED_END = dt.date(2026, 7, 1)
PERIOD = "2026-06"
TENANTS = 3
INCIDENTS = 6_000


def pytest_configure(config):
    os.environ["NEXUS_HOME"] = tempfile.mkdtemp(prefix="nexus-test-")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session", autouse=True)
def fresh_warehouse():
    from orchestration.db import warehouse
    from orchestration.settings import get_settings

    if not get_settings().embedded:
        with warehouse.cursor() as cur:
            for schema in reversed(warehouse.SCHEMAS):
                cur.execute(f"drop schema if exists {schema} cascade")
    warehouse.ensure_database()
    yield


@pytest.fixture(scope="session")
def manifest_path():
    from orchestration.metrics import dbt_manifest

    return dbt_manifest.parse()


@pytest.fixture(scope="session")
def built(fresh_warehouse, manifest_path):
    """Sample data for TENANTS tenants, the dbt project built on it, principals, approved templates."""
    from orchestration.access import policy
    from orchestration.db import warehouse
    from orchestration.dev import seed
    from orchestration.metrics import dbt_manifest
    from orchestration.services import principals as principal_service
    from orchestration.services import templates as template_service

    with warehouse.connection() as conn:
        counts = seed.seed(conn, tenants=TENANTS, incidents=INCIDENTS, seed=7, end_date=SEED_END)
    dbt_manifest.build()
    with warehouse.connection() as conn:
        principal_service.seed_sample_principals(conn, seed.tenant_ids(TENANTS))
        template_service.approve_system_templates(conn, approver=policy.APPROVERS[0])
    return counts


@pytest.fixture(scope="session")
def kpi_world(built):
    """Control rows the KPI models are checked on, and the KPI models rebuilt over them (one dbt
    build for the KPI tests and the isolation tests): tests/helpers/kpi_world.py."""
    from orchestration.dev import seed
    from tests.helpers import kpi_world as world

    return world.build(seed.tenant_ids(TENANTS))


def analyst(tenant: str) -> str:
    """The sample analyst principal of a tenant (created by seed_sample_principals)."""
    return f"analyst@{tenant}.example"


@pytest.fixture()
def conn():
    from orchestration.db import warehouse

    with warehouse.connection() as c:
        yield c


@pytest.fixture(scope="session")
def tenant_ids(built):
    from orchestration.dev import seed

    return seed.tenant_ids(TENANTS)


@pytest.fixture(scope="session")
def artifacts_root() -> Path:
    from orchestration.settings import get_settings

    return get_settings().artifacts_dir


@pytest.fixture()
def inject(monkeypatch):
    """Set NEXUS_FAULTS (orchestration/dev/faults.py) for this process, for one test."""
    from orchestration.dev import faults

    def set_faults(spec: str) -> None:
        monkeypatch.setenv(faults.ENV, spec)
        faults.reset()

    yield set_faults
    faults.reset()


@pytest.fixture(scope="module")
def receiver():
    """A real HTTP webhook receiver on a loopback port (tests/servers.Receiver), for a module."""
    import threading

    from .servers import Receiver

    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def smtp():
    """A real SMTP server (aiosmtpd) on a loopback port: (handler recording the mail, port)."""
    from aiosmtpd.controller import Controller

    from orchestration.api.serving import free_port

    from .servers import SmtpHandler

    handler = SmtpHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()
