"""Link tokens: 32 random bytes, shown once in the URL, stored only as their sha256."""

from __future__ import annotations

import hashlib
import os
import secrets

BASE_URL_ENV = "REPORTS_LINK_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8088"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def public_base(seen: str) -> str:
    """Where links point: the configured public address (a proxy's) if any, else the address
    the caller reached this service at."""
    return os.environ.get(BASE_URL_ENV) or seen


def url_for(token: str, base: str | None = None) -> str:
    base = base or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/links/{token}"
