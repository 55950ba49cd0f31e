"""Template use cases: list, show, diff (reading only), submit, approve, deprecate, and the
registration of the system template files (a bootstrap step, never a side effect of a read).

Governance (governance.lifecycle) owns the lifecycle and commits each step with its event;
these functions are the typed entry points the adapters call.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestration.catalog import templates as catalog
from orchestration.catalog.templates import Template
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
        return cls(row["template_key"], row["version"], row["state"], row["owner_tenant"], row["author"],
                   row["approved_by"], row["content_hash"], row.get("submitted_at"))


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
    per process before a command that writes)."""
    return lifecycle.register_system_templates(conn)


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
        events = [TemplateEvent(e["at"], e["event"], e["actor"], e["details"] or {})
                  for e in lifecycle.history(conn, key) if e["version"] == version]
    return TemplateView(resolved.template, TemplateVersion.of(row), events)


def diff(conn, key: str, v1: int, v2: int, *, tenant_id: str | None = None) -> str:
    """A unified diff of two versions' content ('' when they are the same)."""
    with conn:
        return lifecycle.diff(conn, key, v1, v2, tenant_id=tenant_id)


def submit(conn, path: Path, *, actor: str, tenant_id: str | None = None) -> Template:
    """Submit a template file as a new version (Gate A runs); returns the template submitted."""
    template = catalog.load_file(Path(path), check_name=False)
    lifecycle.submit(conn, template, actor=actor, tenant_id=tenant_id)
    return template


def approve(conn, key: str, version: int, *, actor: str) -> None:
    lifecycle.approve(conn, key, version, actor=actor)


def deprecate(conn, key: str, version: int, *, actor: str, reason: str) -> None:
    lifecycle.deprecate(conn, key, version, actor=actor, reason=reason)
