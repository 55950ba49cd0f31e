"""Real servers on loopback that tests talk to: an SMTP server (aiosmtpd) that records mail."""

from __future__ import annotations

import email
import email.policy


class SmtpHandler:
    """Records every accepted message; `plan[address]` lists SMTP codes to answer its next messages."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.plan: dict[str, list[int]] = {}

    async def handle_DATA(self, server, session, envelope):
        rcpt = envelope.rcpt_tos[0]
        codes = self.plan.get(rcpt)
        if codes:
            code = codes.pop(0)
            return f"{code} {'try again later' if code < 500 else 'mailbox unavailable'}"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def to(self, address):
        return [m for m in self.messages if m["To"] == address]
