"""Bearer JWTs from an OIDC issuer, verified against the issuer's JWKS and mapped to a principal.

Optional, beside the API tokens: set `REPORTS_OIDC_ISSUER`, `REPORTS_OIDC_AUDIENCE` and
`REPORTS_OIDC_JWKS_URL` (and `REPORTS_OIDC_PRINCIPAL_CLAIM`, default `email`). A JWT is accepted
only when its signature verifies with a key of that JWKS (asymmetric algorithms only, so a
public key can never be used as an HMAC secret), its issuer and audience match, it has not
expired, and its claim names a known, active principal: identity comes from the issuer, the
principal's roles and tenants from the control schema. A `scope` claim narrows what the
caller may do to the actions it names, like an API token's scopes.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import jwt

from orchestration.access import policy
from orchestration.access.tokens import Authenticated, Unauthenticated

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
LEEWAY = dt.timedelta(seconds=30)  # clock skew between the issuer and this service


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str
    principal_claim: str = "email"

    @classmethod
    def from_env(cls) -> OidcConfig | None:
        issuer, audience = os.environ.get("REPORTS_OIDC_ISSUER"), os.environ.get("REPORTS_OIDC_AUDIENCE")
        jwks_url = os.environ.get("REPORTS_OIDC_JWKS_URL")
        if not (issuer or audience or jwks_url):
            return None
        if not (issuer and audience and jwks_url):
            raise ValueError("OIDC needs REPORTS_OIDC_ISSUER, REPORTS_OIDC_AUDIENCE and REPORTS_OIDC_JWKS_URL together")
        return cls(issuer, audience, jwks_url, os.environ.get("REPORTS_OIDC_PRINCIPAL_CLAIM") or "email")


def looks_like_jwt(secret: str) -> bool:
    return secret.count(".") == 2 and len(secret) < 16_384


class Verifier:
    """Verifies JWTs of one issuer; the JWKS is fetched over HTTP and cached (keys rotate in by kid)."""

    def __init__(self, config: OidcConfig):
        self.config = config
        self._keys = jwt.PyJWKClient(config.jwks_url, cache_keys=True, lifespan=300, timeout=5)

    def _claims(self, secret: str) -> dict:
        try:
            key = self._keys.get_signing_key_from_jwt(secret)
            # Time is checked below against the caller's clock (the app's, which tests move).
            return jwt.decode(secret, key.key, algorithms=list(ALGORITHMS), audience=self.config.audience,
                              issuer=self.config.issuer,
                              options={"require": ["exp", "iss", "aud", "sub"], "verify_exp": False,
                                       "verify_nbf": False, "verify_iat": False})
        except jwt.PyJWKClientError as exc:
            raise Unauthenticated(f"JWT signing key: {exc}") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"JWT: {exc}") from None

    def authenticate(self, conn, secret: str, *, now: dt.datetime) -> Authenticated:
        claims = self._claims(secret)
        for name, late in (("exp", False), ("nbf", True)):
            if name not in claims:
                continue
            try:
                at = dt.datetime.fromtimestamp(float(claims[name]), dt.UTC)
            except (TypeError, ValueError, OverflowError):
                raise Unauthenticated(f"JWT: {name} is not a time") from None
            if (now > at + LEEWAY) if not late else (now < at - LEEWAY):
                raise Unauthenticated(f"JWT: {'expired at' if not late else 'not valid before'} {at.isoformat()}")
        principal_id = claims.get(self.config.principal_claim)
        if not isinstance(principal_id, str) or not principal_id:
            raise Unauthenticated(f"JWT: no {self.config.principal_claim} claim to name a principal")
        principal = policy.get_principal(conn, principal_id)
        denial = policy.standing_denial(principal)
        if denial:
            raise Unauthenticated(f"JWT for {principal_id}: {denial}")
        scope = claims.get("scope")
        scopes = frozenset(scope.split()) & frozenset(policy.ACTIONS) if isinstance(scope, str) else frozenset()
        return Authenticated(principal, f"jwt:{claims.get('jti') or claims['sub']}", scopes)
