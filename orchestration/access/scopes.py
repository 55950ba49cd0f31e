"""The row scope of a report query: what a principal may see (its vertical and region scopes)
narrowed to what the request asks for, as the ReaderScope the database enforces.

Pure: no database, no audit (the caller audits a refusal as it does for `policy.authorize`).
A request outside the principal's scope is refused by name, never silently widened or emptied.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestration.access import policy
from orchestration.db.report_context import ReaderScope
from orchestration.errors import Denied


def _narrowed(allowed: frozenset[str] | None, asked: Iterable[str], what: str, who: str) -> tuple[str, ...] | None:
    asked = frozenset(asked)
    if not asked:
        return tuple(sorted(allowed)) if allowed else None
    outside = sorted(asked - allowed) if allowed else []
    if outside:
        raise Denied(f"{who} may not see {what} {', '.join(outside)} (scoped to {', '.join(sorted(allowed))})")
    return tuple(sorted(asked))


def reader_scope(principal: policy.Principal, *, verticals: Iterable[str] = (), geo_scopes: Iterable[str] = (),
                 include_withdrawn: bool = False) -> ReaderScope:
    """The ReaderScope for `principal` asking for these verticals and regions (none: all it may
    see). include_withdrawn needs the `include_withdrawn` action (root only); asking without it
    is Denied here too, so no caller can forget the check."""
    who = principal.principal_id
    if include_withdrawn:
        reason = policy.decide(principal, "include_withdrawn")
        if reason:
            raise Denied(f"{who} may not include consent-withdrawn subjects: {reason}")
    return ReaderScope(verticals=_narrowed(principal.verticals, verticals, "vertical", who),
                       geo_scopes=_narrowed(principal.geo_scopes, geo_scopes, "region", who),
                       include_withdrawn=include_withdrawn)
