"""Gate B's scope probe: it finds rows outside a run's scope when the database does not hide
them. A broken policy is simulated by running the probe's queries under a wider context than
the run asked for (what a missing or wrong RLS policy would amount to); under the run's own
context every count is zero."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestration.catalog.templates import ColumnDef, RolesDef, SectionDef, Template
from orchestration.db import warehouse
from orchestration.db.report_context import ReaderScope
from orchestration.runs import scope_probe
from orchestration.runs.request import ReportRequest


def _template() -> Template:
    return Template(key="rdef_probe0000000000", version=1, title="t", owner="o", cadence="daily", formats=("csv",),
                    sensitivity="internal", roles=RolesDef(run=("analyst",), receive=("analyst",)), retention_days=1,
                    expectation_suite="report_definition", primary_section="rows",
                    sections=(SectionDef(name="rows", title="t", columns=(ColumnDef(name="tenant_id", type="text"),),
                                         sql="select tenant_id from {{ ref('incidents', 1) }}"),))


def _request(**scope) -> ReportRequest:
    return ReportRequest(template_key="rdef_probe0000000000", template_version=1, tenant_id="acme",
                         window_start=dt.date(2026, 6, 1), window_end=dt.date(2026, 7, 1), requester="analyst@acme.example",
                         formats=("csv",), **scope)


@pytest.fixture()
def acme_scope(built, conn):
    with conn, conn.cursor() as cur:
        cur.execute("select distinct vertical from raw.incidents where tenant_id = 'acme' order by 1 limit 1")
        vertical = cur.fetchone()[0]
        cur.execute("select distinct region from raw.incidents where tenant_id = 'acme' order by 1 limit 1")
        return vertical, cur.fetchone()[0]


def test_under_the_runs_own_context_nothing_is_outside(conn, acme_scope):
    vertical, region = acme_scope
    request = _request(verticals=(vertical,), geo_scopes=(region,))
    with warehouse.reader_connection() as reader:
        outcomes = scope_probe.probe(conn, reader, _template(), request)
    assert {o.column for o in outcomes} == {"incidents.tenant_id", "incidents.vertical", "incidents.region",
                                            "incidents.subject_id"}
    assert all(o.success and o.observed == 0 for o in outcomes), outcomes


def test_rows_a_wider_context_shows_fail_the_probe(conn, acme_scope, monkeypatch):
    vertical, region = acme_scope
    request = _request(verticals=(vertical,), geo_scopes=(region,))
    # the database hides nothing beyond the tenant: as if the vertical, region and consent rules were gone
    monkeypatch.setattr(ReportRequest, "reader_scope", lambda self: ReaderScope(include_withdrawn=True))
    with warehouse.reader_connection() as reader:
        outcomes = {o.column: o for o in scope_probe.probe(conn, reader, _template(), request)}
    assert outcomes["incidents.tenant_id"].success  # the tenant rule still holds
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) filter (where vertical <> %s), count(*) filter (where region <> %s) "
                    "from raw.incidents where tenant_id = 'acme'", (vertical, region))
        other_verticals, other_regions = cur.fetchone()
    assert outcomes["incidents.vertical"].observed == other_verticals > 0 and not outcomes["incidents.vertical"].success
    assert outcomes["incidents.region"].observed == other_regions > 0 and not outcomes["incidents.region"].success
    withdrawn = scope_probe.withdrawn_subjects(conn, "acme")
    with conn, conn.cursor() as cur:
        cur.execute("select count(*) from raw.incidents where tenant_id = 'acme' and subject_id = any(%s)", (withdrawn,))
        assert outcomes["incidents.subject_id"].observed == cur.fetchone()[0] > 0
    assert outcomes["incidents.subject_id"].severity == "critical" and not outcomes["incidents.subject_id"].success
