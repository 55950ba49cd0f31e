"""The one place that decides which template version a request means.

A run, a schedule and `templates show` all name a template by key and, optionally, version.
What each may use differs (a run takes approved or deprecated versions, a schedule only an
approved system version with a template file, a reader any version), but the lookup, the
visibility rule (system versions plus the tenant's own, never another tenant's) and the refusal
messages are these.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from orchestration.catalog import templates as catalog
from orchestration.catalog.templates import Template, TemplateError
from orchestration.errors import Invalid, NotFound
from orchestration.governance import lifecycle

Purpose = Literal["run", "schedule", "read"]
# The states of a version each purpose may use (the evidence pack prints this table).
USABLE_STATES: dict[str, tuple[str, ...]] = {
    "run": ("approved", "deprecated"), "schedule": ("approved",), "read": ("draft", "approved", "deprecated"),
}


class UnknownTemplate(NotFound):
    """No template of that key is visible to the requester."""


class NoRunnableVersion(Invalid):
    """The template exists, but no version of it may be used for this purpose."""


@dataclass(frozen=True)
class VersionRow:
    template_key: str
    version: int
    state: str
    owner_tenant: str | None


@dataclass(frozen=True)
class Resolved:
    template: Template  # the content as submitted (from the control schema), not the file
    row: VersionRow


def _visible_versions(conn, key: str, tenant_id: str | None, system_only: bool) -> list[VersionRow]:
    with conn.cursor() as cur:
        cur.execute(
            """select template_key, version, state, owner_tenant from control.template_versions
                where template_key = %s
                  and (owner_tenant is null or (not %s and owner_tenant = %s))
                order by version""",
            (key, system_only, tenant_id),
        )
        return [VersionRow(*r) for r in cur.fetchall()]


def _known_keys(conn, tenant_id: str | None) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("""select distinct template_key from control.template_versions
                        where owner_tenant is null or owner_tenant = %s""", (tenant_id,))
        keys = {r[0] for r in cur.fetchall()}
    return sorted(keys | {t.key for t in catalog.load_all()})


def unknown_template(conn, key: str, tenant_id: str | None) -> UnknownTemplate:
    known = _known_keys(conn, tenant_id)
    near = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(near)}?" if near else f"; known templates: {', '.join(known) or 'none'}"
    return UnknownTemplate(f"unknown template {key}{hint}")


def resolve(conn, key: str, version: int | None = None, *, tenant_id: str | None = None,
            purpose: Purpose = "run") -> Resolved:
    """The version `key` [v`version`] means for this purpose and tenant.

    Without a version: the newest usable one (for a run, approved before deprecated; for a
    schedule, the newest approved that has a template file, since only those have a job).
    """
    rows = _visible_versions(conn, key, tenant_id, system_only=purpose == "schedule")
    if not rows:
        raise unknown_template(conn, key, tenant_id)
    usable = [r for r in rows if r.state in USABLE_STATES[purpose]]
    if purpose == "schedule":
        with_file = {t.version for t in catalog.load_all() if t.key == key}
        usable = [r for r in usable if r.version in with_file or version is not None]
    if version is not None:
        chosen = next((r for r in rows if r.version == version), None)
        if chosen is None:
            raise NotFound(f"{key} v{version} has not been submitted (versions: {', '.join(str(r.version) for r in rows)})")
        if chosen not in usable:
            raise NoRunnableVersion(_why_not(chosen, purpose))
    else:
        if not usable:
            raise NoRunnableVersion(f"{key} has no approved version available"
                                    + (f" to tenant {tenant_id}" if tenant_id else "")
                                    + ": approve one first")
        chosen = max(usable, key=lambda r: (r.state == "approved", r.version))
    if purpose == "schedule":
        try:
            catalog.load(key, chosen.version)
        except TemplateError as exc:
            raise NoRunnableVersion(f"{key} v{chosen.version} has no template file, so no job to run: {exc}") from exc
    template, _ = lifecycle.load_version(conn, key, chosen.version, tenant_id=tenant_id)
    return Resolved(template, chosen)


def _why_not(row: VersionRow, purpose: Purpose) -> str:
    label = f"{row.template_key} v{row.version}"
    if purpose == "schedule":
        return f"{label} is {row.state}: only an approved version can be scheduled"
    return f"{label} is {row.state}: only an approved (or deprecated) version can run"


def template_of_run(conn, record) -> Template:
    """The template a run executed (for its links, corrections and retention): a report
    definition's run keeps its compiled template on its record; a template run's is its
    submitted version in the control schema."""
    if record.template is not None:
        return Template.model_validate(record.template)
    template, _ = lifecycle.load_version(conn, record.template_key, record.template_version, tenant_id=record.tenant_id)
    return template
