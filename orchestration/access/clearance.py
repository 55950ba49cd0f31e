"""What a principal may see in builder output: a classification ceiling, masked fields in clear,
row-level output. Derived from roles (pure), asked again at every preview and run."""

from __future__ import annotations

from dataclasses import dataclass

from orchestration.access import policy


@dataclass(frozen=True)
class Viewer:
    """What the requester may see: a clearance level and whether row-level output is allowed."""

    clearance: str  # one of CLASSIFICATION_ORDER
    unmasked: bool  # may see masked fields in clear
    rows_allowed: bool


# The highest classification each role may see; a principal gets the highest of its roles.
_CEILING = {
    "viewer": "internal",
    "executive": "internal",
    "analyst": "confidential",
    "manager": "confidential",
    "template_owner": "confidential",
    "approver": "confidential",
    "tenant_admin": "restricted",
    "platform_admin": "pii",
    "root": "pii",  # the specification's ROOT: sees everything, withdrawn subjects only with a reason
}
# The order matters: a principal cleared for one level sees the levels before it.
CLASSIFICATION_ORDER: tuple[str, ...] = ("public", "internal", "confidential", "restricted", "pii")


def viewer_for(principal: policy.Principal) -> Viewer:
    levels = [_CEILING[r] for r in principal.roles if r in _CEILING] or ["public"]
    clearance = max(levels, key=CLASSIFICATION_ORDER.index)
    return Viewer(
        clearance=clearance,
        unmasked=clearance == "pii",
        rows_allowed=policy.decide(principal, "report_rows") is None,
    )
