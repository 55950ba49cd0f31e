"""The Reporting API over real HTTP: uvicorn on loopback, httpx as the client, a movable clock."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

from orchestration.api.serving import serving

ENTITIES = "/reporting/registry/entities"


class Clock:
    def __init__(self):
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture(scope="session")
def api_clock():
    return Clock()


@pytest.fixture(scope="session")
def api_base(built, api_clock):
    from orchestration.api.app import create_app

    with serving(create_app(clock=api_clock), name="reporting-api") as base:
        yield base


@pytest.fixture()
def client(api_base, api_clock):
    saved = api_clock.now
    with httpx.Client(base_url=api_base, timeout=30) as c:
        yield c
    api_clock.now = saved


@pytest.fixture(scope="session")
def token_for(built):
    """token_for(principal) -> a bearer secret for that principal (made by itself, cached)."""
    from orchestration.db import warehouse
    from orchestration.services import tokens

    cache: dict[str, str] = {}

    def make(principal_id: str, scopes: tuple[str, ...] = ()) -> str:
        key = f"{principal_id}|{','.join(scopes)}"
        if key not in cache:
            with warehouse.connection() as conn:
                cache[key] = tokens.create_token(conn, actor=principal_id, principal_id=principal_id, scopes=scopes).secret
        return cache[key]

    return make


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture(scope="module")
def entity(client_module, token_for):
    """An active registry entity over metric_incident_flow (a new name per module)."""
    body = {
        "entity_name": f"flow_{uuid.uuid4().hex[:8]}",
        "data_source": {"model": "metric_incident_flow", "version": 1},
        "allowed_fields": [
            {"name": "tenant_id", "type": "text"},
            {"name": "day", "type": "date"},
            {"name": "severity", "type": "text"},
            {"name": "incidents_opened", "type": "bigint", "aggregatable": True},
            {"name": "incidents_resolved", "type": "bigint", "aggregatable": True, "classification": "confidential"},
        ],
        "classification": "internal",
    }
    admin = auth(token_for("platform@nexus.example"))
    created = client_module.post(ENTITIES, json=body, headers=admin).json()
    return client_module.post(f"{ENTITIES}/{created['entity_id']}/activate", headers=admin).json()


@pytest.fixture(scope="module")
def client_module(api_base):
    with httpx.Client(base_url=api_base, timeout=60) as c:
        yield c




@pytest.fixture(scope="session")
def held_runs():
    """Run ids the quiet API admitted; nothing executes them unless a test does."""
    return []


@pytest.fixture(scope="session")
def quiet_base(built, api_clock, held_runs):
    """The same API whose runs are admitted but not launched: for tests of admission and of
    execution steps they drive themselves (no worker process per run)."""
    from orchestration.api.app import create_app

    with serving(create_app(clock=api_clock, launch=held_runs.append), name="reporting-api-quiet") as base:
        yield base


@pytest.fixture()
def quiet(quiet_base):
    with httpx.Client(base_url=quiet_base, timeout=60) as c:
        yield c
