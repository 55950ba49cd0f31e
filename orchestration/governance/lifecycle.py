"""Template lifecycle (draft -> approved -> deprecated) and Gate A.

A submitted version is immutable: its content hash is recorded, and a system template file
whose content no longer matches its registered hash is refused by name. Approval needs a
second person with the approver role and a clean Gate A: metrics resolve in the dbt manifest,
every section compiles as report_reader and returns its declared columns, the Gate B suite
is valid for the template.

Every function runs in the caller's transaction: services/templates.py commits (and keeps a
Gate A refusal in the history, through `record_gate_a_failure`, after the refused step rolls back).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestration.access import audit, policy
from orchestration.catalog import templates as catalog
from orchestration.catalog.templates import Template, TemplateError
from orchestration.db.warehouse import dict_rows, json_param
from orchestration.exports import redaction
from orchestration.governance import section_checks
from orchestration.metrics import dbt_manifest
from orchestration.runs import freshness, gate_b
from orchestration.settings import EXPECTATIONS_DIR, TEMPLATES_DIR


# The lifecycle as enforced: each step, the state it needs, the state it leaves, and the policy
# action (access/policy.py MATRIX) whose roles may take it. approve and deprecate below check
# against this table; the evidence pack prints it.
@dataclass(frozen=True)
class Transition:
    step: str
    source: str | None  # None: a new version
    target: str
    action: str


TRANSITIONS: dict[str, Transition] = {
    "submit": Transition("submit", None, "draft", "submit"),
    "approve": Transition("approve", "draft", "approved", "approve"),
    "deprecate": Transition("deprecate", "approved", "deprecated", "deprecate"),
}
STATES = ("draft", "approved", "deprecated")


class GovernanceError(ValueError):
    """A lifecycle step that cannot happen; the message says why."""


class GateAFailed(GovernanceError):
    """Gate A refused a submission or an approval: `record_gate_a_failure` keeps it in the template's
    history, in a transaction of its own (the refused step's is rolled back)."""

    def __init__(self, template: Template, problems: list[str], *, actor: str, tenant_id: str | None = None):
        self.template, self.problems, self.actor, self.tenant_id = template, problems, actor, tenant_id
        super().__init__(f"Gate A blocked {template.label}:\n  - " + "\n  - ".join(problems))


class NotRunnable(GovernanceError):
    """A template version that may not run now."""


# ---------------------------------------------------------------- Gate A


def gate_a(conn, template: Template, *, author: str | None = None, approver: str | None = None,
           suites_root: Path = EXPECTATIONS_DIR) -> list[str]:
    """Every reason the version may not be approved (empty: it may)."""
    problems: list[str] = []
    try:
        manifest = dbt_manifest.load_manifest()
    except dbt_manifest.DbtError as exc:
        return [str(exc)]
    for metric in template.metrics:
        try:
            dbt_manifest.metric_definition(metric.id, metric.model, metric.version, manifest)
        except dbt_manifest.DbtError as exc:
            problems.append(f"metric {metric.id} ({metric.model} v{metric.version}): {exc}")
    now = dt.datetime.now(dt.UTC)
    for name, version in template.models_read():
        try:
            info = dbt_manifest.model(name, version, manifest)
        except dbt_manifest.DbtError:
            continue  # reported by the section check
        if info.deprecated_at(now):
            problems.append(f"dbt model {name} v{version} was deprecated on {info.deprecation_date}: "
                            "move the template to the model's current version")
    problems += freshness.source_problems(conn, template)
    problems += redaction.gate_a_problems(template, manifest)
    problems += section_checks.problems(template, manifest)
    problems += _suite_problems(template, suites_root)
    if approver is not None:
        if approver == author:
            problems.append(f"{approver} is the author of {template.label}: approval needs a second person")
        principal = policy.get_principal(conn, approver)
        if policy.decide(principal, "approve") is not None:
            problems.append(f"{approver} lacks the approver role")
    return problems


def _suite_problems(template: Template, suites_root: Path) -> list[str]:
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    try:
        suite = gate_b.load_suite(template.expectation_suite, suites_root)
    except gate_b.SuiteError as exc:
        return [str(exc)]
    problems = []
    columns = {s.name: {c.name for c in s.columns} for s in template.sections}
    for i, exp in enumerate(suite["expectations"]):
        try:
            ExpectationConfiguration(type=exp["type"], kwargs=exp["kwargs"]).to_domain_obj()
        except Exception as exc:
            problems.append(f"Gate B suite {template.expectation_suite}: expectation {i} ({exp.get('type')}) is invalid: {exc}")
            continue
        sections = exp["meta"]["sections"]
        for name in (columns if sections == "*" else sections):
            if name not in columns:
                problems.append(f"Gate B suite {template.expectation_suite}: expectation {i} names unknown section {name}")
            elif exp["kwargs"].get("column") and exp["kwargs"]["column"] not in columns[name]:
                problems.append(f"Gate B suite {template.expectation_suite}: expectation {i} checks column "
                                f"{exp['kwargs']['column']} that section {name} does not declare")
    return problems


# ---------------------------------------------------------------- lifecycle


def _content(template: Template) -> dict[str, Any]:
    return template.model_dump(mode="json")


def _version_row(conn, key: str, version: int) -> dict[str, Any] | None:
    with conn.cursor() as cur:
        cur.execute("select * from control.template_versions where template_key = %s and version = %s", (key, version))
        rows = dict_rows(cur)
    return rows[0] if rows else None


def _event(conn, key: str, version: int, event: str, actor: str, details: dict[str, Any] | None = None,
           tenant_id: str | None = None, outcome: str = "succeeded") -> None:
    with conn.cursor() as cur:
        cur.execute(
            "insert into control.template_events (template_key, version, event, actor, details) values (%s, %s, %s, %s, %s)",
            (key, version, event, actor, json_param(details or {})),
        )
    audit.record(conn, actor=actor, action=f"template.{event}", target=f"{key} v{version}", outcome=outcome,
                 tenant_id=tenant_id, details=details)


def register_system_templates(conn, templates: list[Template] | None = None, root: Path = TEMPLATES_DIR) -> list[str]:
    """Record every system template file as a submitted version; refuse a changed file by name.
    In the caller's transaction (services/templates.py commits one template at a time)."""
    registered = []
    for template in templates if templates is not None else catalog.load_all(root):
        path = catalog.template_path(template.key, template.version, root)
        row = _version_row(conn, template.key, template.version)
        if row is None:
            with conn.cursor() as cur:
                cur.execute(
                    """insert into control.template_versions (template_key, version, content_hash, content, author)
                       values (%s, %s, %s, %s, %s)""",
                    (template.key, template.version, template.content_hash, json_param(_content(template)), template.owner),
                )
            _event(conn, template.key, template.version, "submitted", template.owner,
                   {"content_hash": template.content_hash, "source": str(path.name),
                    "diff": _diff_to_previous(conn, template)})
            registered.append(template.label)
        elif row["content_hash"] != template.content_hash:
            raise TemplateError(
                f"{path}: content changed without a new version number (v{template.version} was submitted "
                f"with hash {row['content_hash'][:12]}, the file now hashes to {template.content_hash[:12]}); "
                f"save the change as {catalog.template_path(template.key, template.version + 1, root).name}"
            )
    return registered


def _diff_to_previous(conn, template: Template) -> str:
    with conn.cursor() as cur:
        cur.execute(
            "select content from control.template_versions where template_key = %s and version < %s "
            "order by version desc limit 1", (template.key, template.version))
        row = cur.fetchone()
    return _diff(row[0] if row else {}, _content(template), "previous", template.label)


def _diff(a: dict, b: dict, a_name: str, b_name: str) -> str:
    dump = lambda d: yaml.safe_dump(d, sort_keys=False, allow_unicode=True, width=120).splitlines(keepends=True)  # noqa: E731
    return "".join(difflib.unified_diff(dump(a) if a else [], dump(b), a_name, b_name))


def submit(conn, template: Template, *, actor: str, tenant_id: str | None = None) -> None:
    """Submit a new version (system, or a tenant's custom template) after Gate A."""
    target = template.label
    policy.authorize(conn, actor, "submit", target=target, tenant_id=tenant_id)
    existing = _version_row(conn, template.key, template.version)
    if existing and existing["content_hash"] == template.content_hash:
        raise GovernanceError(f"{target} is already submitted with this content")
    if existing:
        raise GovernanceError(f"{target} is already submitted and immutable: submit the change as v{template.version + 1}")
    problems = gate_a(conn, template)
    if problems:
        raise GateAFailed(template, problems, actor=actor, tenant_id=tenant_id)
    with conn.cursor() as cur:
        cur.execute(
            """insert into control.template_versions
                   (template_key, version, owner_tenant, content_hash, content, author)
               values (%s, %s, %s, %s, %s, %s)""",
            (template.key, template.version, tenant_id, template.content_hash, json_param(_content(template)), actor),
        )
    _event(conn, template.key, template.version, "submitted", actor,
           {"content_hash": template.content_hash, "owner_tenant": tenant_id, "diff": _diff_to_previous(conn, template)},
           tenant_id=tenant_id)


def record_gate_a_failure(conn, failure: GateAFailed) -> None:
    """The template event (and audit row) of a Gate A refusal, in the caller's transaction."""
    _event(conn, failure.template.key, failure.template.version, "gate_a_failed", failure.actor,
           {"problems": failure.problems}, tenant_id=failure.tenant_id, outcome="failed")


def load_version(conn, key: str, version: int, *, tenant_id: str | None = None) -> tuple[Template, dict[str, Any]]:
    row = _version_row(conn, key, version)
    if row is None or (tenant_id is not None and row["owner_tenant"] not in (None, tenant_id)):
        raise GovernanceError(f"{key} v{version} has not been submitted")
    return Template.model_validate(row["content"]), row


def approve(conn, key: str, version: int, *, actor: str) -> None:
    template, row = load_version(conn, key, version)
    policy.authorize(conn, actor, "approve", target=template.label, tenant_id=row["owner_tenant"])
    if row["state"] != TRANSITIONS["approve"].source:
        raise GovernanceError(f"{template.label} is {row['state']}: only a draft can be approved")
    problems = gate_a(conn, template, author=row["author"], approver=actor)
    if problems:
        raise GateAFailed(template, problems, actor=actor)
    with conn.cursor() as cur:
        cur.execute(
            """update control.template_versions set state = 'approved', approved_by = %s, approved_at = now()
               where template_key = %s and version = %s and state = 'draft'""",
            (actor, key, version),
        )
    _event(conn, key, version, "approved", actor, {"content_hash": row["content_hash"], "author": row["author"]})


def deprecate(conn, key: str, version: int, *, actor: str, reason: str) -> None:
    if not reason.strip():
        raise GovernanceError("deprecating needs a reason")
    template, row = load_version(conn, key, version)
    policy.authorize(conn, actor, "deprecate", target=template.label, tenant_id=row["owner_tenant"])
    if row["state"] != TRANSITIONS["deprecate"].source:
        raise GovernanceError(f"{template.label} is {row['state']}: only an approved version can be deprecated")
    with conn.cursor() as cur:
        cur.execute(
            """update control.template_versions set state = 'deprecated', deprecated_by = %s,
                   deprecated_at = now(), deprecation_reason = %s
               where template_key = %s and version = %s""",
            (actor, reason, key, version),
        )
    _event(conn, key, version, "deprecated", actor, {"reason": reason})


@dataclass(frozen=True)
class Runnable:
    template: Template
    state: str
    warning: str | None = None


def check_runnable(conn, template: Template, *, trigger: str) -> Runnable:
    """Whether this exact content may run now: submitted, approved, unchanged since approval."""
    row = _version_row(conn, template.key, template.version)
    if row is None:
        raise NotRunnable(f"{template.label} has not been submitted")
    if row["content_hash"] != template.content_hash:
        raise NotRunnable(
            f"{template.label} differs from the submitted version (hash {template.content_hash[:12]} "
            f"vs {row['content_hash'][:12]}): a changed template needs a new version and approval"
        )
    if row["state"] == "draft":
        raise NotRunnable(f"{template.label} is not approved")
    if row["state"] == "deprecated":
        if trigger == "schedule":
            raise NotRunnable(f"{template.label} is deprecated ({row['deprecation_reason']}): scheduled runs are refused")
        return Runnable(template, "deprecated", f"{template.label} is deprecated: {row['deprecation_reason']}")
    return Runnable(template, row["state"])


def list_versions(conn, *, tenant_id: str | None = None) -> list[dict[str, Any]]:
    """System versions, plus the custom versions of `tenant_id` (never another tenant's)."""
    with conn.cursor() as cur:
        cur.execute(
            """select template_key, version, state, owner_tenant, author, approved_by, content_hash, submitted_at
               from control.template_versions
               where owner_tenant is null or owner_tenant = %s
               order by template_key, version""",
            (tenant_id,),
        )
        return dict_rows(cur)


@dataclass(frozen=True)
class VersionRecord:
    """One template version as the control schema holds it: state, who and when."""

    template_key: str
    version: int
    state: str
    owner_tenant: str | None
    content_hash: str
    author: str
    submitted_at: dt.datetime
    approved_by: str | None
    approved_at: dt.datetime | None
    deprecated_by: str | None
    deprecated_at: dt.datetime | None
    deprecation_reason: str | None


def all_versions(conn) -> list[VersionRecord]:
    """Every version of every template, system and custom, across tenants (for the platform's
    evidence pack: the caller has checked the reader may see every tenant's)."""
    with conn.cursor() as cur:
        cur.execute(
            """select template_key, version, state, owner_tenant, content_hash, author, submitted_at,
                      approved_by, approved_at, deprecated_by, deprecated_at, deprecation_reason
               from control.template_versions order by template_key, version""")
        return [VersionRecord(*row) for row in cur.fetchall()]


def history(conn, key: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(
            "select version, event, actor, at, details from control.template_events where template_key = %s order by event_id",
            (key,),
        )
        return dict_rows(cur)


def diff(conn, key: str, v1: int, v2: int, *, tenant_id: str | None = None) -> str:
    a, _ = load_version(conn, key, v1, tenant_id=tenant_id)
    b, _ = load_version(conn, key, v2, tenant_id=tenant_id)
    return _diff(_content(a), _content(b), f"{key} v{v1}", f"{key} v{v2}")


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)
