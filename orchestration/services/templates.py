"""Template use cases: list, show, diff (reading only), submit, approve, deprecate, and the
registration of the system template files (a bootstrap step, never a side effect of a read).

Governance (governance.lifecycle) holds the lifecycle rules; each function here runs a step
with its event in one transaction, and keeps a Gate A refusal in the history in a transaction of
its own. These are the typed entry points the adapters call.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestration.catalog import templates as catalog
from orchestration.catalog.templates import Template
from orchestration.db.rows import from_row
from orchestration.governance import lifecycle, versions


@dataclass(frozen=True)
class TemplateVersion:
    key: str
    version: int
    state: str
    owner_tenant: str | None  # None: a system template
    author: str
    approved_by: str | None
    content_hash: str
    submitted_at: dt.datetime | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> TemplateVersion:
        return from_row(cls, row, key=row["template_key"])


@dataclass(frozen=True)
class TemplateEvent:
    at: dt.datetime
    event: str
    actor: str
    details: dict[str, Any]


@dataclass(frozen=True)
class TemplateView:
    template: Template
    version: TemplateVersion
    history: list[TemplateEvent]


def register_system_templates(conn) -> list[str]:
    """Every system template file recorded as a submitted version (bootstrap: init, demo, or once
    per process before a command that writes); one transaction per template, so a file changed in
    place is refused by name without undoing the others."""
    registered = []
    for template in catalog.load_all():
        with conn:
            registered += lifecycle.register_system_templates(conn, [template])
    return registered


def approve_system_templates(conn, *, approver: str) -> list[str]:
    """Register every file and approve each draft (demo and test bootstrap; the same Gate A applies)."""
    register_system_templates(conn)
    with conn:
        drafts = [r for r in lifecycle.list_versions(conn) if r["owner_tenant"] is None and r["state"] == "draft"]
    for row in drafts:
        approve(conn, row["template_key"], row["version"], actor=approver)
    return [f"{row['template_key']} v{row['version']}" for row in drafts]


def list_versions(conn, *, tenant_id: str | None = None) -> list[TemplateVersion]:
    """System versions, plus `tenant_id`'s custom ones; what is registered, nothing more."""
    with conn:
        return [TemplateVersion.of(r) for r in lifecycle.list_versions(conn, tenant_id=tenant_id)]


def show(conn, key: str, version: int | None = None, *, tenant_id: str | None = None) -> TemplateView:
    """One version (default: the newest of any state) with its content and history."""
    with conn:
        if version is None:
            rows = [r for r in lifecycle.list_versions(conn, tenant_id=tenant_id) if r["template_key"] == key]
            if not rows:
                raise versions.unknown_template(conn, key, tenant_id)
            version = max(r["version"] for r in rows)
        resolved = versions.resolve(conn, key, version, tenant_id=tenant_id, purpose="read")
        _, row = lifecycle.load_version(conn, key, version, tenant_id=tenant_id)
        events = [from_row(TemplateEvent, e, details=e["details"] or {})
                  for e in lifecycle.history(conn, key) if e["version"] == version]
    return TemplateView(resolved.template, TemplateVersion.of(row), events)


def diff(conn, key: str, v1: int, v2: int, *, tenant_id: str | None = None) -> str:
    """A unified diff of two versions' content ('' when they are the same)."""
    with conn:
        return lifecycle.diff(conn, key, v1, v2, tenant_id=tenant_id)


def submit(conn, path: Path, *, actor: str, tenant_id: str | None = None) -> Template:
    """Submit a template file as a new version (Gate A runs); returns the template submitted."""
    template = catalog.load_file(Path(path), check_name=False)
    submit_template(conn, template, actor=actor, tenant_id=tenant_id)
    return template


def submit_template(conn, template: Template, *, actor: str, tenant_id: str | None = None) -> None:
    """Submit a template as a new version (Gate A runs)."""
    try:
        with conn:
            lifecycle.submit(conn, template, actor=actor, tenant_id=tenant_id)
    except lifecycle.GateAFailed as failure:
        _keep(conn, failure)
        raise


def approve(conn, key: str, version: int, *, actor: str) -> None:
    try:
        with conn:
            lifecycle.approve(conn, key, version, actor=actor)
    except lifecycle.GateAFailed as failure:
        _keep(conn, failure)
        raise


def deprecate(conn, key: str, version: int, *, actor: str, reason: str) -> None:
    with conn:
        lifecycle.deprecate(conn, key, version, actor=actor, reason=reason)


def _keep(conn, failure: lifecycle.GateAFailed) -> None:
    """A Gate A refusal stays in the template's history though the refused step rolled back."""
    with conn:
        lifecycle.record_gate_a_failure(conn, failure)
