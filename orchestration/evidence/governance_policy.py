"""Item 1: the report template governance policy, the lifecycle as enforced and every version."""

from __future__ import annotations

import datetime as dt
import inspect

from orchestration.access import policy
from orchestration.evidence.document import Document, code, generated_from, join, table
from orchestration.governance import lifecycle, versions
from orchestration.governance.lifecycle import VersionRecord


def _when(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else None


def _roles(action: str) -> str:
    roles = sorted(policy.MATRIX[action])
    return ", ".join(roles + ["platform_admin"]) if action not in policy.NOT_IMPLIED else ", ".join(roles)


def document(all_versions: list[VersionRecord]) -> Document:
    transitions = table(
        ["step", "from state", "to state", "policy action", "roles that may take it"],
        [(t.step, t.source or "(new version)", t.target, code(t.action), _roles(t.action))
         for t in lifecycle.TRANSITIONS.values()])
    usable = table(["purpose", "states a version may be in"],
                   [(purpose, ", ".join(states)) for purpose, states in versions.USABLE_STATES.items()])
    listed = table(
        ["template", "version", "state", "owner tenant", "author", "submitted", "approved by", "approved",
         "deprecated by", "deprecated", "deprecation reason", "content hash"],
        [(v.template_key, v.version, v.state, v.owner_tenant or "(system)", v.author, _when(v.submitted_at),
          v.approved_by, _when(v.approved_at), v.deprecated_by, _when(v.deprecated_at), v.deprecation_reason,
          code(v.content_hash[:16])) for v in all_versions])
    problems = () if all_versions else ("no template version is recorded in the control schema",)
    markdown = join(
        "# Report template governance policy",
        generated_from("governance/lifecycle.py", "governance/versions.py", "access/policy.py",
                       "control.template_versions"),
        "## Lifecycle rules",
        inspect.cleandoc(lifecycle.__doc__ or ""),
        f"States: {', '.join(lifecycle.STATES)}.",
        transitions,
        "## Which versions may be used",
        inspect.cleandoc(versions.resolve.__doc__ or ""),
        usable,
        "Before a run: " + inspect.cleandoc(lifecycle.check_runnable.__doc__ or ""),
        f"## Every template version ({len(all_versions)})",
        listed,
    )
    return Document(1, "template_governance_policy", "Report template governance policy", markdown,
                    "missing" if problems else "ok", problems)
