"""What a principal id and a tenant id may look like, checked before either is stored or used.

The rule for both: the text must already be in Unicode NFKC form and ASCII only. That one rule
refuses every confusable (a Cyrillic 'а' in 'аcme', a full-width 'ａ', a ligature, a zero-width
joiner) and every mixed-script id, without a confusables table to keep up to date: two ids that
look the same on a screen are then the same bytes. Then the shape:

- a person: an e-mail address `local@domain`, lowercase (`analyst@acme.example`);
- a service account: `svc:name` (`svc:scheduler`);
- a tenant: lowercase letters, digits, '_' and '-', starting with a letter or digit.

Reserved ids are the names the platform itself writes as actors in the audit log (the run
engine writes `system`, retention `svc:retention`, ...): nobody may be created under them, so an
audit row by `system` is always the platform.
"""

from __future__ import annotations

import re
import unicodedata

from orchestration.errors import Invalid

EMAIL = re.compile(r"[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9_])?@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                   r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+")
SERVICE = re.compile(r"svc:[a-z][a-z0-9-]{0,39}")
TENANT = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
ALL_TENANTS = "*"
MAX_PRINCIPAL_ID = 254  # the longest e-mail address SMTP carries

# Actors the code writes without a principal row (grep `actor="` and `ACTOR =`), plus the names
# an operator would read as the platform itself. Seeded service accounts (svc:scheduler, svc:demo,
# svc:delivery) are principals: they are platform-wide, so only a platform admin may touch them.
RESERVED = frozenset({
    "system", "root", "admin", "administrator", "seed", "(none)",
    "svc:system", "svc:root", "svc:retention", "svc:late-data",
})


def _plain(text: object, what: str) -> str:
    """The text when it is NFKC-normal ASCII; refusing says which character is the problem."""
    if not isinstance(text, str) or not text.strip():
        raise Invalid(f"{what} is empty")
    if unicodedata.normalize("NFKC", text) != text or not text.isascii():
        odd = next((c for c in text if not c.isascii()), None)
        shown = f" ({odd!r} is U+{ord(odd):04X} {unicodedata.name(odd, 'unnamed')})" if odd else ""
        raise Invalid(f"{what} {text!r} has non-ASCII characters{shown}: ids are plain ASCII so that "
                      "look-alike letters cannot pass for another id")
    return text


def principal_id(text: object) -> str:
    """A valid principal id (e-mail or svc:name) or Invalid; reserved names are allowed here
    (they exist as actors); `new_principal_id` refuses them."""
    value = _plain(text, "principal id")
    if len(value) > MAX_PRINCIPAL_ID:
        raise Invalid(f"principal id is {len(value)} characters long; at most {MAX_PRINCIPAL_ID}")
    if value in RESERVED or EMAIL.fullmatch(value) or SERVICE.fullmatch(value):
        return value
    hint = " (lowercase)" if EMAIL.fullmatch(value.lower()) or SERVICE.fullmatch(value.lower()) else ""
    raise Invalid(f"invalid principal id {value!r}: expected an e-mail address local@domain{hint} "
                  "or a service account svc:name")


def new_principal_id(text: object) -> str:
    """An id a new principal may take: valid and not reserved for the platform."""
    value = principal_id(text)
    if value in RESERVED:
        raise Invalid(f"principal id {value!r} is reserved: the platform writes it as an actor in the audit log")
    return value


def is_service(principal: str) -> bool:
    return principal.startswith("svc:")


def tenant_id(text: object) -> str:
    """A valid tenant id or Invalid (the same rule everywhere a tenant id is typed in)."""
    value = _plain(text, "tenant id")
    if not TENANT.fullmatch(value):
        raise Invalid(f"invalid tenant id {value!r}: expected lowercase letters, digits, '_' or '-'")
    return value


def membership(text: object) -> str:
    """A tenant id, or `*` for every tenant (a platform-wide membership)."""
    return ALL_TENANTS if text == ALL_TENANTS else tenant_id(text)
