"""The approvals a run names in its manifest: who let this exact template (or definition) version
run, when, and with which Gate A result; and, for a run of a schedule that distributes it, the
Gate C approval of its recipients and channels.

A template version is approved only with a clean Gate A by a second person with the approver
role (governance/lifecycle.py), so its approval carries Gate A's pass at that moment; a report
definition's version is activated (catalog/definition_store.py). In the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from orchestration.catalog import definition_store
from orchestration.catalog.definition_template import is_definition_key
from orchestration.catalog.templates import Template
from orchestration.delivery import approvals as distribution
from orchestration.delivery.recipients import SENSITIVE
from orchestration.governance import lifecycle


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def approval_for(conn, template: Template) -> dict[str, Any]:
    """The manifest's `approval` section for a run of `template`."""
    if is_definition_key(template.key):
        version = definition_store.get_version(conn, template.key, template.version)
        return {
            "kind": "report_definition_version",
            "definition_id": template.key,
            "version": template.version,
            "activated_by": version.activated_by,
            "activated_at": _iso(version.activated_at),
            "validation_hash": version.validation_hash,
        }
    try:
        _, row = lifecycle.load_version(conn, template.key, template.version)
    except lifecycle.GovernanceError:  # admission refuses such a run; if one gets here, the manifest says so
        row = {"state": "not submitted", "content_hash": None, "approved_by": None, "approved_at": None}
    approved = row["approved_by"] is not None
    return {
        "kind": "template_version",
        "template_key": template.key,
        "version": template.version,
        "state": row["state"],
        "content_hash": row["content_hash"],
        "approved_by": row["approved_by"],
        "approved_at": _iso(row["approved_at"]),
        # approve() refuses unless Gate A is clean, so an approval is a Gate A pass at its time
        "gate_a": {"result": "passed" if approved else "not approved", "checked_at": _iso(row["approved_at"])},
    }


def gate_c_entry(row: dict[str, Any], schedule_id: int) -> dict[str, Any]:
    """A distribution approval row as the manifest names it (and verify compares it)."""
    return {
        "schedule_id": schedule_id,
        "approval_id": row["approval_id"],
        "approved_by": row["approver"],
        "approved_at": _iso(row["approved_at"]),
        "recipients": sorted(row["recipients"]),
        "channels": sorted(row["channels"]),
        "distribution_hash": row["distribution_hash"],
    }


def gate_c_for(conn, schedule_id: str | None, sensitivity: str) -> dict[str, Any] | None:
    """The manifest's `gate_c` section: the schedule's newest distribution approval, the one its
    deliveries are checked against (delivery/outbox.py); None for a run not from a runtime schedule
    or a schedule nobody approved a distribution of that needs none."""
    sid = int(schedule_id) if schedule_id is not None and str(schedule_id).isdigit() else None
    if sid is None:
        return None
    row = distribution.current_approval(conn, sid)
    if row is not None:
        return gate_c_entry(row, sid)
    if sensitivity in SENSITIVE:  # Gate C will refuse to deliver it; the manifest says so
        return {"schedule_id": sid, "approval_id": None,
                "note": f"schedule {sid} has no recorded distribution approval: a {sensitivity} report is not delivered"}
    return None
