"""Whether a report definition's run may execute: the run engine's approval check for templates
whose key is a definition id (catalog.definition_template).

A definition's approval is its activation (services.definitions): a run executes only the
active version; a deprecated definition still runs on demand, with a warning, but not on a
schedule; a draft or archived one never runs.
"""

from __future__ import annotations

from orchestration.catalog import definition_store
from orchestration.catalog.definitions import Definition
from orchestration.catalog.templates import Template
from orchestration.governance.lifecycle import NotRunnable, Runnable


def active_version(definition: Definition) -> int:
    """The version runs use, or NotRunnable: a draft or archived definition has none."""
    if definition.status not in ("active", "deprecated") or definition.active_version is None:
        raise NotRunnable(f"report definition {definition.definition_id} is {definition.status}: "
                          "an approver activates it before it can run")
    return definition.active_version


def check_runnable(conn, template: Template, *, trigger: str) -> Runnable:
    definition = definition_store.get(conn, template.key)
    if definition is None:
        raise NotRunnable(f"report definition {template.key} does not exist")
    if active_version(definition) != template.version:
        raise NotRunnable(f"report definition {template.key} v{template.version} is not the active version "
                          f"(v{definition.active_version} is)")
    if definition.status == "deprecated":
        if trigger == "schedule":
            raise NotRunnable(f"report definition {template.key} is deprecated: scheduled runs are refused")
        return Runnable(template, "deprecated", f"report definition {template.key} is deprecated")
    return Runnable(template, "approved")
