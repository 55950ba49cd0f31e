"""The governance commands as a person uses them: one clear line on refusal, state on success."""

from __future__ import annotations

import yaml

from orchestration.access import policy
from orchestration.catalog import templates as catalog
from tests.helpers.cli import invoke as cli


def test_submit_approve_deprecate_from_the_command_line(built, tmp_path):
    data = yaml.safe_load(catalog.template_path("incident_summary", 1).read_text())
    data.update(version=300, title="Incident summary (CLI)")
    path = tmp_path / "incident_summary.v300.yaml"
    path.write_text(yaml.safe_dump(data))

    refused = cli("templates", "submit", str(path), "--as", "viewer@acme.example")
    assert refused.exit_code == 1 and "may not submit" in refused.stderr and "Traceback" not in refused.stderr

    submitted = cli("templates", "submit", str(path), "--as", policy.PLATFORM_OWNER)
    assert submitted.exit_code == 0, submitted.stderr
    assert "Gate A passed" in submitted.stdout

    own = cli("templates", "approve", "incident_summary", "300", "--as", policy.PLATFORM_OWNER)
    assert own.exit_code == 1 and "may not approve" in own.stderr

    approved = cli("templates", "approve", "incident_summary", "300", "--as", policy.APPROVERS[0])
    assert approved.exit_code == 0, approved.stderr

    listing = cli("templates", "list").stdout
    line = next(row for row in listing.splitlines() if row.split()[:2] == ["incident_summary", "300"])
    assert "approved" in line and policy.APPROVERS[0] in line

    shown = cli("templates", "show", "incident_summary", "--version", "300").stdout
    assert "approved" in shown and "submitted" in shown and "+title: Incident summary (CLI)" in shown

    diff = cli("templates", "diff", "incident_summary", "1", "300").stdout
    assert "+version: 300" in diff

    no_reason = cli("templates", "deprecate", "incident_summary", "300", "--as", policy.APPROVERS[0], "--reason", " ")
    assert no_reason.exit_code == 1 and "needs a reason" in no_reason.stderr
    deprecated = cli("templates", "deprecate", "incident_summary", "300", "--as", policy.APPROVERS[0], "--reason", "superseded")
    assert deprecated.exit_code == 0, deprecated.stderr

    verified = cli("audit", "verify")
    assert verified.exit_code == 0 and "audit chain intact" in verified.stdout


def test_metrics_list_and_principals_list(built):
    metrics = cli("metrics", "list").stdout
    assert "mtta_minutes" in metrics and "sum(ack_seconds_sum) / nullif(sum(acknowledged_count), 0) / 60" in metrics
    assert "incident_summary v1" in metrics
    people = cli("principals", "list").stdout
    assert "approver@nexus.example" in people and "roles=analyst" in people
    denied = cli("principals", "add", "mallory@acme.example", "--role", "platform_admin", "--tenant", "*",
                 "--as", "tenant_admin@acme.example")
    assert denied.exit_code == 1 and "may not" in denied.stderr
    escalation = cli("principals", "add", "mallory@acme.example", "--role", "approver", "--tenant", "acme",
                     "--as", "tenant_admin@acme.example")
    assert escalation.exit_code == 1 and "may not" in escalation.stderr
    other_tenant = cli("principals", "add", "mallory@globex.example", "--role", "analyst", "--tenant", "globex",
                       "--as", "tenant_admin@acme.example")
    assert other_tenant.exit_code == 1 and "not a member of tenant globex" in other_tenant.stderr
    ok = cli("principals", "add", "new.analyst@acme.example", "--role", "analyst", "--tenant", "acme",
             "--as", "tenant_admin@acme.example")
    assert ok.exit_code == 0, ok.stderr
