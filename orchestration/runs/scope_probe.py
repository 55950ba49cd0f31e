"""Gate B's scope probe for runs of report definitions: defence in depth for row-level security.

For every model the run's SQL reads, the probe asks, as report_reader under the run's own
security context, how many visible rows lie outside the run's scope: another tenant, a vertical
or region the run may not read, a subject whose consent is withdrawn (unless root included them
for a logged reason). Row-level security should make every count zero; a non-zero count fails
the gate before anything is published. The withdrawn subjects are read independently of the
policy (latest consent event per subject, by the admin connection), so a broken policy cannot
vouch for itself.
"""

from __future__ import annotations

from orchestration.catalog.templates import Template
from orchestration.db.warehouse import reader_transaction
from orchestration.metrics import dbt_manifest
from orchestration.runs.gate_b import Outcome
from orchestration.runs.request import ReportRequest

SECTION = "scope"
_LATEST_WITHDRAWN = """
select subject_id from (
    select distinct on (subject_id) subject_id, state
    from raw.consent_events where tenant_id = %s
    order by subject_id, changed_at desc, event_id desc
) latest where state = 'withdrawn'
"""


def withdrawn_subjects(conn, tenant_id: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("select to_regclass('raw.consent_events') is not null")
        if not cur.fetchone()[0]:
            return []
        cur.execute(_LATEST_WITHDRAWN, (tenant_id,))
        return [r[0] for r in cur.fetchall()]


def _conditions(request: ReportRequest, columns: set[str]) -> list[tuple[str, str, str]]:
    """(column, what is checked, SQL condition of a row outside the scope)."""
    found = [("tenant_id", "tenant isolation", "tenant_id is distinct from %(tenant)s")]
    if request.verticals is not None and "vertical" in columns:
        found.append(("vertical", "vertical scope", "not (vertical = any(%(verticals)s))"))
    if request.geo_scopes is not None and "region" in columns:
        found.append(("region", "geo scope", "not (region = any(%(regions)s))"))
    if request.include_withdrawn is None and "subject_id" in columns:
        found.append(("subject_id", "consent withdrawn", "subject_id = any(%(withdrawn)s)"))
    return found


def probe(conn, reader, template: Template, request: ReportRequest) -> list[Outcome]:
    """One critical outcome per model and scope rule; `conn` is the admin connection."""
    params = {"tenant": request.tenant_id, "verticals": list(request.verticals or ()),
              "regions": list(request.geo_scopes or ()), "withdrawn": withdrawn_subjects(conn, request.tenant_id)}
    manifest = dbt_manifest.load_manifest()
    outcomes = []
    for name, version in template.models_read():
        info = dbt_manifest.model(name, version, manifest)
        columns = set(manifest["nodes"][info.unique_id].get("columns", {}))
        rules = _conditions(request, columns)
        counts = ", ".join(f"count(*) filter (where {condition})" for _, _, condition in rules)
        with reader_transaction(reader, request.tenant_id, scope=request.reader_scope()) as cur:
            cur.execute(f"select {counts} from {info.relation}", params)
            observed = cur.fetchone()
        outcomes += [Outcome(SECTION, "rows_outside_scope", f"{name}.{column}", "critical", count == 0,
                             f"{check}: rows of {name} visible outside the run's scope", count)
                     for (column, check, _), count in zip(rules, observed, strict=True)]
    return outcomes
