"""Real servers on loopback that tests talk to: an SMTP server (aiosmtpd) that records mail, and
an HTTP receiver that records webhook POSTs."""

from __future__ import annotations

import email
import email.policy
import http.server
import time


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


class Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.requests: list[dict] = []
        self.plan: list = []  # statuses (int) or "hang" for the next requests; then 200

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class ReceiverHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        answer = self.server.plan.pop(0) if self.server.plan else 200
        self.server.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                     "body": body.decode(), "status": answer})
        if answer == "hang":
            time.sleep(2.5)  # longer than the sender's timeout
            answer = 200
        try:
            self.send_response(answer)
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass
