"""API token use cases: create, list, revoke. Each owns its transaction and is audited.

A principal may make and revoke its own tokens; making one for somebody else needs the right to
manage that principal (a tenant admin for people of its own tenants, a platform admin for
platform-wide principals and service accounts), exactly as granting them roles does.
"""

from __future__ import annotations

import datetime as dt

from orchestration.access import audit, policy, tokens
from orchestration.access.tokens import ApiToken, IssuedToken
from orchestration.errors import Conflict, Invalid, NotFound


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _authorize_for(conn, actor: str, principal_id: str, what: str) -> policy.Principal:
    """The principal the token is (or will be) for, once the actor may act on its behalf."""
    acting = policy.get_principal(conn, actor)
    denial = policy.standing_denial(acting)
    if denial:
        audit.record_now(conn, actor=actor, action=f"token.{what}.denied", target=principal_id, outcome="denied",
                         details={"reason": denial})
        raise policy.AccessDenied(f"{actor} may not {what} tokens: {denial}")
    subject = policy.get_principal(conn, principal_id)
    if subject is None:
        raise NotFound(f"no principal {principal_id!r}; see `nexus-reports principals list`")
    if actor != principal_id:  # the same rule as changing the principal: its tenants' admin, or a platform admin
        policy.authorize_principal_change(conn, actor, principal_id, f"{what} tokens of", [policy.Grants.of(subject)])
    return subject


def create_token(conn, *, actor: str, principal_id: str, lifetime: dt.timedelta = tokens.DEFAULT_LIFETIME,
                 scopes: tuple[str, ...] = (), now: dt.datetime | None = None) -> IssuedToken:
    now = now or _utcnow()
    lifetime = tokens.validate_lifetime(lifetime)
    scopes = tokens.validate_scopes(scopes)
    subject = _authorize_for(conn, actor, principal_id, "create")
    if not subject.active:
        raise Invalid(f"principal {principal_id} is deactivated: reactivate it before giving it a token")
    with conn:
        issued = tokens.insert(conn, principal_id=principal_id, scopes=scopes, created_by=actor, now=now, lifetime=lifetime)
        audit.record(conn, actor=actor, action="token.create", target=issued.token.token_id, outcome="succeeded",
                     details={"principal": principal_id, "scopes": list(scopes),
                              "expires_at": issued.token.expires_at.isoformat()})
    return issued


def list_tokens(conn, *, actor: str, principal_id: str | None = None) -> list[ApiToken]:
    """The actor's own tokens, or (for whoever may manage that principal) another principal's."""
    target = principal_id or actor
    _authorize_for(conn, actor, target, "list")
    return tokens.list_for(conn, [target])


def revoke_token(conn, *, actor: str, token_id: str, now: dt.datetime | None = None) -> ApiToken:
    now = now or _utcnow()
    token = tokens.get(conn, token_id)
    _authorize_for(conn, actor, token.principal_id, "revoke")
    with conn:
        if not tokens.mark_revoked(conn, token_id, by=actor, now=now):
            raise Conflict(f"token {token_id} was already revoked at {token.revoked_at:%Y-%m-%d %H:%M:%SZ}")
        audit.record(conn, actor=actor, action="token.revoke", target=token_id, outcome="succeeded",
                     tenant_id=None, details={"principal": token.principal_id})
    return tokens.get(conn, token_id)
