"""What routes depend on: a warehouse connection and the authenticated principal.

Identity comes only from a verified credential: the bearer token is checked on every request
(token known, not expired, not revoked; principal known and active), or, when an OIDC issuer is
configured, a JWT it signed (access/oidc.py), mapped to a known, active principal. Nothing in the path, query
or body can name who the caller is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestration.access import oidc, tokens
from orchestration.access.tokens import Authenticated

_bearer = HTTPBearer(auto_error=False, description="an API token from `nexus-reports tokens create`")


def get_conn(request: Request) -> Iterator[object]:
    conn = request.app.state.connect()
    try:
        yield conn
    finally:
        conn.close()


Conn = Annotated[object, Depends(get_conn)]


def current_principal(
    request: Request, conn: Conn, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Authenticated:
    secret = credentials.credentials if credentials and credentials.scheme.lower() == "bearer" else None
    verifier = request.app.state.oidc
    with conn:  # last_used_at is written even when the route later fails
        if verifier is not None and secret and not secret.startswith(tokens.PREFIX) and oidc.looks_like_jwt(secret):
            caller = verifier.authenticate(conn, secret, now=request.app.state.clock())
        else:
            caller = tokens.authenticate(conn, secret, now=request.app.state.clock())
    request.state.principal_id = caller.principal.principal_id
    return caller


CurrentPrincipal = Annotated[Authenticated, Depends(current_principal)]


def request_id(request: Request) -> str:
    return request.state.request_id


RequestId = Annotated[str, Depends(request_id)]
