"""Why a download-link request was refused, as a bounded category.

control.access_events keeps the refusal's full text (who revoked it and when, the expiry time,
the policy's reason), which differs from event to event; counting "by reason" needs the kind of
refusal instead. The texts are those links/service.py writes; an unknown text counts as 'other',
never dropped.
"""

from __future__ import annotations

import re

# (category, pattern on the reason text), first match wins
CATEGORIES = (
    ("granted", re.compile(r"granted$")),
    ("unknown_token", re.compile(r"unknown token$")),
    ("revoked", re.compile(r"revoked ")),
    ("expired", re.compile(r"link expired ")),
    ("tenant_mismatch", re.compile(r"run tenant .* differs ")),
    ("artifact_unavailable", re.compile(r"artifact unavailable")),
    ("method_not_allowed", re.compile(r"method \S+ not allowed$")),
    ("run_not_completed", re.compile(r"run \S+ is \w+$")),
    ("not_allowed", re.compile(r".*(has none of the roles|is not a member of tenant|is deactivated|unknown principal)")),
)


def category(reason: str) -> str:
    for name, pattern in CATEGORIES:
        if pattern.match(reason):
            return name
    return "other"
