"""The Reporting API: one ASGI app with the download links.

`create_app` takes the clock and the connection factory, so tests can move time and count
connections; `nexus-reports serve` runs it under uvicorn. OpenAPI at /openapi.json, docs at
/docs. The download links (`/links/<token>`) are the link service's own routes, mounted here
unchanged, so one port serves both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from orchestration.access import oidc
from orchestration.api import link_routes as link_web
from orchestration.api import metrics, problems
from orchestration.api.requests import RequestAudit
from orchestration.api.routers import audit, charts, definitions, pipelines, registry, runs, schedules
from orchestration.db import warehouse
from orchestration.runs import worker


def _version() -> str:
    try:
        return version("nexus-reports")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def create_app(*, clock: Callable[[], dt.datetime] | None = None, connect: Callable[[], object] | None = None,
               launch: Callable[[str], object] | None = None, oidc_config: oidc.OidcConfig | None = None) -> FastAPI:
    """`launch(run_id)` starts an admitted run's execution: by default a detached worker that
    runs Dagster's `report_run` job on the instance (the Dagster UI shows it). `oidc_config`
    (default: from REPORTS_OIDC_* in the environment) also accepts the issuer's JWTs."""
    app = FastAPI(
        title="Nexus Reports API",
        version=_version(),
        description=("Governed reporting and export: the reportable entity registry, report definitions, runs, "
                     "scheduled reports, chart definitions and downloads."),
    )
    app.state.clock = clock or _utcnow
    app.state.connect = connect or warehouse.connect
    app.state.launch = launch or worker.launch
    config = oidc_config or oidc.OidcConfig.from_env()
    app.state.oidc = oidc.Verifier(config) if config else None
    app.state.metrics = metrics.ApiMetrics(app.state.connect)
    problems.install(app)
    app.add_middleware(link_web.PrivateHeaders)  # no-store, no-referrer: on API answers as on downloads
    app.add_middleware(RequestAudit)
    app.include_router(registry.router)
    app.include_router(definitions.router)
    app.include_router(runs.router)
    app.include_router(schedules.router)
    app.include_router(charts.router)
    app.include_router(audit.router)
    app.include_router(pipelines.router)
    # The specification's remapped alias: the same handlers under /exports/pipelines, deprecated.
    app.include_router(pipelines.router, prefix=pipelines.ALIAS_PREFIX, deprecated=True)
    app.include_router(metrics.router)
    # The link service's routes read app.state.clock / app.state.connect, which this app provides;
    # create_app also keeps link tokens out of uvicorn's access log.
    app.router.routes.extend(link_web.create_app(clock=app.state.clock, connect=app.state.connect).routes)
    return app


def serve(host: str = "127.0.0.1", port: int = 8088) -> None:
    import uvicorn

    # The access log stays on: the link service's filter redacts tokens from it.
    uvicorn.run(create_app(), host=host, port=port, access_log=True, log_level="info")
