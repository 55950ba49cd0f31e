"""API tokens: bearer credentials of a principal, stored only as their sha256.

A token is shown once, when it is made. Every use re-checks the token (known, not expired, not
revoked) and its principal (known, active), so deactivating a principal locks out all of its
tokens at once. Scopes can only narrow what the principal's roles allow: a token scoped to
`view` cannot run a report even when its principal may.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from orchestration.access import policy
from orchestration.errors import Invalid, NotFound

PREFIX = "nxr_"
MAX_LIFETIME = dt.timedelta(days=365)
DEFAULT_LIFETIME = dt.timedelta(days=30)


class Unauthenticated(Exception):
    """No valid credential: the API answers 401 and says nothing about which part failed."""


@dataclass(frozen=True)
class ApiToken:
    token_id: str
    principal_id: str
    scopes: tuple[str, ...]
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    revoked_by: str | None

    def state(self, now: dt.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # the bearer value, shown once and never stored


@dataclass(frozen=True)
class Authenticated:
    """Who is calling and what their token lets them do."""

    principal: policy.Principal
    token_id: str
    scopes: frozenset[str]

    def allows(self, action: str) -> bool:
        return not self.scopes or action in self.scopes


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def validate_scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(scopes) - set(policy.ACTIONS))
    if unknown:
        raise Invalid(f"unknown token scope(s) {', '.join(unknown)}; known: {', '.join(policy.ACTIONS)}")
    return tuple(sorted(set(scopes)))


def validate_lifetime(lifetime: dt.timedelta) -> dt.timedelta:
    if lifetime <= dt.timedelta(0) or lifetime > MAX_LIFETIME:
        raise Invalid(f"a token lives between 1 second and {MAX_LIFETIME.days} days, not {lifetime}")
    return lifetime


_COLUMNS = "token_id, principal_id, scopes, created_by, created_at, expires_at, last_used_at, revoked_at, revoked_by"


def _token(row) -> ApiToken:
    return ApiToken(row[0], row[1], tuple(row[2]), *row[3:])


def insert(conn, *, principal_id: str, scopes: tuple[str, ...], created_by: str, now: dt.datetime,
           lifetime: dt.timedelta) -> IssuedToken:
    """Store a new token (in the caller's transaction) and return it with its secret."""
    secret = PREFIX + secrets.token_urlsafe(32)
    token_id = "tok_" + secrets.token_hex(8)
    with conn.cursor() as cur:
        cur.execute(
            f"""insert into control.api_tokens (token_id, token_sha256, principal_id, scopes, created_by, created_at, expires_at)
                values (%s, %s, %s, %s, %s, %s, %s) returning {_COLUMNS}""",
            (token_id, digest(secret), principal_id, list(scopes), created_by, now, now + lifetime),
        )
        return IssuedToken(_token(cur.fetchone()), secret)


def get(conn, token_id: str) -> ApiToken:
    with conn.cursor() as cur:
        cur.execute(f"select {_COLUMNS} from control.api_tokens where token_id = %s", (token_id,))
        row = cur.fetchone()
    if row is None:
        raise NotFound(f"no token {token_id}")
    return _token(row)


def list_for(conn, principal_ids: list[str] | None) -> list[ApiToken]:
    """Tokens of these principals (all principals when None), newest first."""
    with conn.cursor() as cur:
        if principal_ids is None:
            cur.execute(f"select {_COLUMNS} from control.api_tokens order by created_at desc, token_id")
        else:
            cur.execute(
                f"select {_COLUMNS} from control.api_tokens where principal_id = any(%s) order by created_at desc, token_id",
                (principal_ids,),
            )
        return [_token(r) for r in cur.fetchall()]


def mark_revoked(conn, token_id: str, *, by: str, now: dt.datetime) -> bool:
    """Revoke (in the caller's transaction); False when it was revoked already."""
    with conn.cursor() as cur:
        cur.execute(
            "update control.api_tokens set revoked_at = %s, revoked_by = %s where token_id = %s and revoked_at is null",
            (now, by, token_id),
        )
        return cur.rowcount == 1


def authenticate(conn, secret: str | None, *, now: dt.datetime) -> Authenticated:
    """The caller behind a bearer secret, or Unauthenticated (one reason, kept for the audit log)."""
    if not secret or not secret.startswith(PREFIX) or len(secret) > 200:
        raise Unauthenticated("no API token")
    with conn.cursor() as cur:
        cur.execute(
            "update control.api_tokens set last_used_at = %s where token_sha256 = %s"
            " returning token_id, principal_id, scopes, expires_at, revoked_at",
            (now, digest(secret)),
        )
        row = cur.fetchone()
    if row is None:
        raise Unauthenticated("unknown token")
    token_id, principal_id, scopes, expires_at, revoked_at = row
    if revoked_at is not None:
        raise Unauthenticated(f"token {token_id} is revoked")
    if expires_at <= now:
        raise Unauthenticated(f"token {token_id} expired at {expires_at.isoformat()}")
    principal = policy.get_principal(conn, principal_id)
    denial = policy.standing_denial(principal)
    if denial:
        raise Unauthenticated(f"token {token_id}: {denial}")
    return Authenticated(principal, token_id, frozenset(scopes))
