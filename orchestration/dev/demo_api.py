"""`make demo`'s Reporting API part: the system registry entities, one saved definition created,
approved and run through the service layer (the same calls the API routes make), executed as
Dagster's `report_run` job, and the curl lines to try the same against `make dev`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from orchestration.access import policy, tenants, tokens
from orchestration.catalog.definitions import DefinitionCreate
from orchestration.db import warehouse
from orchestration.defs.runs.execution import execute_admitted
from orchestration.runs.run_record import RunRecord
from orchestration.services import definition_runs, definitions, registry, runs
from orchestration.services import tokens as token_service

API = "http://127.0.0.1:8088"


def caller_with_token(conn, principal_id: str) -> tuple[tokens.Authenticated, str]:
    """A day-long token for the principal, and who it authenticates as (as the API would see it)."""
    now = dt.datetime.now(dt.UTC)
    secret = token_service.create_token(conn, actor=principal_id, principal_id=principal_id,
                                        lifetime=dt.timedelta(days=1), now=now).secret
    return tokens.authenticate(conn, secret, now=now), secret


def sample_definition(entity_ids: list[str]) -> DefinitionCreate:
    return DefinitionCreate(
        report_name="Incidents by severity, vertical and case status (last 30 days)",
        entity_ids=entity_ids,
        fields=["incidents.severity", "incidents.vertical", "incidents.suspension_status"],
        group_by=["incidents.severity", "incidents.vertical", "incidents.suspension_status"],
        aggregates=[{"function": "count", "field": "incidents.incident_id", "alias": "incidents"}],
        sort=[{"field": "incidents.severity", "direction": "asc"}, {"field": "incidents.vertical", "direction": "asc"}],
        time_window={"field": "incidents.opened_at"},
    )


def run_definition(echo: Callable[[str], None]) -> RunRecord:
    """Register the system entities, save and approve one definition for the first sample tenant,
    run it through Dagster and print how to do the same over HTTP."""
    with warehouse.connection() as conn:
        entities = registry.register_system_entities(conn, actor=policy.PLATFORM_ADMIN)
        tenant = tenants.list_tenant_ids(conn)[0]
        analyst, secret = caller_with_token(conn, f"analyst@{tenant}.example")
        approver, _ = caller_with_token(conn, policy.APPROVERS[0])
        incidents = next(e for e in entities if e.entity_name == "incidents" and e.tenant_id is None)
        wanted = sample_definition([incidents.entity_id])
        active, _ = definitions.list_definitions(conn, analyst, status="active", limit=200)
        view = next((v for v in active if v.version.spec.report_name == wanted.report_name
                     and tuple(v.version.spec.entity_ids) == tuple(wanted.entity_ids)), None)
        if view is None:  # the first demo saves and approves it; later ones run it again
            view = definitions.create_definition(conn, analyst, wanted, correlation_id="demo")
            view = definitions.activate_definition(conn, approver, view.definition.definition_id, correlation_id="demo")
        definition_id = view.definition.definition_id
        record, _ = definition_runs.submit_run(conn, analyst, definition_id, definition_runs.RunOrder(format="xlsx"),
                                               correlation_id="demo", launch=lambda run_id: None)
    execute_admitted(record.run_id)
    with warehouse.connection() as conn:
        record = runs.show(conn, record.run_id).record
    echo(f"\nReporting API: {len(entities)} system entities; definition {definition_id} "
         f"({view.version.spec.report_name}) run {record.run_id}: {record.state}, "
         f"{sum(record.row_counts.values())} rows, {record.artifact_location or record.diagnosis}")
    echo("Try it against `make dev` (the token is for "
         f"analyst@{tenant}.example and lasts a day):")
    echo(f"  TOKEN={secret}")
    echo(f"  curl -s -H \"Authorization: Bearer $TOKEN\" -X POST -H 'Content-Type: application/json' "
         f"{API}/reports/definitions/{definition_id}/preview -d '{{\"row_limit\": 10}}'")
    echo(f"  curl -s -H \"Authorization: Bearer $TOKEN\" {API}/reports/runs/{record.run_id}/download?format=xlsx")
    return record
