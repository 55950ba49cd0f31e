"""Gate B with one GX session (context and datasources) per process: a gate after a passing one still fails a bad snapshot,
a gate after a failing one still passes a good one, and no run's assets stay behind."""

from __future__ import annotations

import pytest

from orchestration.catalog import templates
from orchestration.runs import engine, failures, gate_b, records
from orchestration.runs.request import ReportRequest
from tests.helpers.governance import approved_variant

from ..conftest import PERIOD, analyst


def test_the_reused_context_still_fails_a_bad_snapshot_and_passes_a_good_one(built, conn):
    template = templates.load("sla_performance", 1)
    broken = approved_variant(conn, template, 315, sections=tuple(
        s.model_copy(update={"max_rows": 1}) if s.mandatory else s for s in template.sections))
    outcomes = []
    for variant in (template, broken, template):
        request = ReportRequest.for_period(variant, "globex", PERIOD, requester=analyst("globex"), formats=("csv",))
        try:
            run_id = engine.run_report(variant, request, retries=False).run_id
        except failures.RunFailed as failed:
            run_id = failed.run_id
        outcomes.append(records.get_run(conn, run_id).gate_passed)
        if len(outcomes) == 1:
            (session,) = gate_b._sessions.values()
    assert outcomes == [True, False, True]
    # the same context and datasources served all three: the SQL one holds none of their tables,
    # the frames one only its one dataframe asset
    assert list(gate_b._sessions.values()) == [session]
    assert session.sql.assets == []
    assert [asset.name for asset in session.frames.assets] == ["snapshot"]


def test_a_gate_that_raises_leaves_no_datasource_for_the_next_run(built, conn, monkeypatch):
    """A datasource whose engine broke mid-gate is dropped; the next gate builds a fresh one."""
    template = templates.load("sla_performance", 1)
    request = ReportRequest.for_period(template, "globex", PERIOD, requester=analyst("globex"), formats=("csv",))
    passing = gate_b._validate_section

    def broken(*args, **kwargs):
        raise RuntimeError("the engine's connection is gone")

    monkeypatch.setattr(gate_b, "_validate_section", broken)
    with pytest.raises(failures.RunFailed, match="the engine's connection is gone"):
        engine.run_report(template, request, retries=False)
    assert gate_b._sessions == {}
    monkeypatch.setattr(gate_b, "_validate_section", passing)
    published = engine.run_report(template, request, retries=False)
    assert records.get_run(conn, published.run_id).gate_passed is True and len(gate_b._sessions) == 1
