"""Read commands only read (issue 9): on the old CLI `templates list/show/diff` registered the
system template files on every call, so a read wrote (and failed on a changed file)."""

from __future__ import annotations

import pytest

from tests.helpers.audit import last_seq
from tests.helpers.cli import invoke


@pytest.fixture()
def no_bootstrap(monkeypatch):
    """Any bootstrap or reaping step a read might take fails the test."""
    from orchestration.db import warehouse
    from orchestration.governance import lifecycle
    from orchestration.runs import supervisor

    def forbidden(*args, **kwargs):
        raise AssertionError("a read command bootstrapped or reaped")

    for module, name in ((lifecycle, "register_system_templates"), (warehouse, "ensure_database"), (supervisor, "reap")):
        monkeypatch.setattr(module, name, forbidden)


@pytest.mark.parametrize("args", [
    ["templates", "list"],
    ["templates", "list", "--tenant", "acme"],
    ["templates", "show", "incident_summary"],
    ["templates", "show", "incident_summary", "--version", "1"],
    ["templates", "diff", "incident_summary", "1", "1"],
    ["runs", "list"],
    ["principals", "list"],
    ["audit", "tail"],
    ["schedules", "list"],
    ["links", "list"],
    ["artifacts", "list"],
    ["delivery", "status"],
])
def test_a_read_command_changes_nothing(built, conn, no_bootstrap, args):
    before = last_seq(conn)
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert last_seq(conn) == before


def test_a_run_that_does_not_exist_is_a_one_line_not_found(built, no_bootstrap):
    result = invoke("runs", "show", "no-such-run")
    assert result.exit_code == 1 and result.stderr.strip() == "Error: no run no-such-run"
    unknown = invoke("templates", "show", "incident_sumary")
    assert unknown.exit_code == 1 and "unknown template incident_sumary; did you mean incident_summary" in unknown.stderr
