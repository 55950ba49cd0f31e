"""The approval a run names in its manifest: who let this exact template (or definition) version
run, when, and with which Gate A result.

A template version is approved only with a clean Gate A by a second person with the approver
role (governance/lifecycle.py), so its approval carries Gate A's pass at that moment; a report
definition's version is activated (catalog/definition_store.py). In the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from orchestration.catalog import definition_store
from orchestration.catalog.definition_template import is_definition_key
from orchestration.catalog.templates import Template
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
