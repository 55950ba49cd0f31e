"""Item 6: the access control matrix, every action by role, decided by the policy code itself.

Each cell is `policy.decide` for a principal holding that one role in every tenant, so the
table is what `authorize` enforces (platform_admin's implied rights and NOT_IMPLIED included).
Link revocation has rules of its own (links/revocation.py): its rows come from those tables.
"""

from __future__ import annotations

import inspect

from orchestration.access import policy
from orchestration.access.roles import ROLES
from orchestration.evidence.document import Document, generated_from, join, table
from orchestration.links import revocation

TITLE = "Access control matrix for reporting actions"
# Revocations beyond one's own link: which revocation.py role set decides each.
REVOCATIONS = (
    ("revoke: another's link, a run's links, a template's links in a tenant", revocation.REVOKE_ROLES),
    ("revoke: every link of a tenant (the incident switch)", revocation.TENANT_SWITCH_ROLES),
    ("revoke: a template's links across tenants", revocation.TEMPLATE_WIDE_ROLES),
)


def _holder(role: str) -> policy.Principal:
    return policy.Principal(f"{role}@matrix", "user", role, True, frozenset({role}), frozenset({policy.ALL_TENANTS}))


def grid() -> dict[str, dict[str, bool]]:
    """action -> role -> allowed, for every action of the policy and every revocation kind."""
    cells = {action: {role: policy.decide(_holder(role), action) is None for role in ROLES} for action in policy.ACTIONS}
    for label, roles in REVOCATIONS:
        cells[label] = {role: role in roles or role == "platform_admin" for role in ROLES}
    return cells


def document() -> Document:
    cells = grid()
    matrix = table(["action", *ROLES], [(action, *("yes" if allowed[r] else "-" for r in ROLES))
                                        for action, allowed in cells.items()])
    markdown = join(
        f"# {TITLE}",
        generated_from("access/policy.py", "access/roles.py", "links/revocation.py"),
        inspect.cleandoc(__doc__ or "").split("\n\n", 1)[1],
        inspect.cleandoc(policy.__doc__ or ""),
        matrix,
        "Besides the role: a principal must be active and a member of the tenant it acts for (`*`: every "
        "tenant); a template may narrow who runs and receives it (`roles.run`, `roles.receive`); the creator of "
        "a link may always revoke it.",
    )
    return Document(6, "access_control_matrix", TITLE, markdown)
