"""How a link request is refused: LinkError to whoever manages links (CLI), LinkDenied to
whoever holds a link (HTTP), with a public message that never says whether the artifact exists."""

from __future__ import annotations

from orchestration.errors import Invalid

PUBLIC_MESSAGES = {
    404: "This link is not valid.",
    403: "This link does not grant access.",
    410: "This link has expired.",
    405: "Method Not Allowed",
}


class LinkError(Invalid):
    """A link request that cannot be honoured (CLI): the message says what to change."""


class LinkDenied(Exception):
    """A request for a link was refused; `status` is the HTTP status, `reason` goes only to the
    access event and the audit log. `link` is the link the token named (None: unknown token) and
    `details` what else the access event notes; services/links.resolve records both."""

    def __init__(self, status: int, reason: str, *, link=None, details: dict | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.link = link
        self.details = details or {}

    @property
    def public_message(self) -> str:
        return PUBLIC_MESSAGES[self.status]
