"""E-mail over SMTP (smtplib): no TLS, STARTTLS or implicit TLS, settings from the environment.

Sensitive reports (confidential, restricted) go out as links only; internal ones carry the
files as attachments (up to ATTACH_LIMIT_BYTES in all, else links). The Message-ID derives
from the delivery's idempotency key, so a resend after a crash can be deduplicated by the
receiver. SMTP 4xx and connection problems are transient; 5xx is permanent.
"""

from __future__ import annotations

import mimetypes
import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from orchestration.delivery.errors import SendFailure

TLS_MODES = ("none", "starttls", "tls")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}
ATTACH_LIMIT_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str
    user: str | None
    password: str | None
    sender: str
    timeout: float
    ca_file: str | None = None

    @classmethod
    def from_env(cls) -> SmtpSettings:
        tls = (os.environ.get("REPORTS_SMTP_TLS") or "none").strip().lower()
        if tls not in TLS_MODES:
            raise ValueError(f"REPORTS_SMTP_TLS must be one of {', '.join(TLS_MODES)}, not {tls!r}")
        port = os.environ.get("REPORTS_SMTP_PORT")
        return cls(
            host=os.environ.get("REPORTS_SMTP_HOST") or "localhost",
            port=int(port) if port else DEFAULT_PORTS[tls],
            tls=tls,
            user=os.environ.get("REPORTS_SMTP_USER") or None,
            password=os.environ.get("REPORTS_SMTP_PASSWORD") or None,
            sender=os.environ.get("REPORTS_SMTP_FROM") or "reports@nexus.example",
            timeout=float(os.environ.get("REPORTS_SMTP_TIMEOUT") or 30),
            ca_file=os.environ.get("REPORTS_SMTP_CA_FILE") or None,
        )


def message_id(idempotency_key: str, sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1] if "@" in sender else "nexus-reports"
    return f"<{idempotency_key}@{domain}>"


def build_message(*, sender: str, to: str, subject: str, body: str, msg_id: str,
                  attachments: list[Path] = ()) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = msg_id
    msg.set_content(body)
    for path in attachments:
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    return msg


def _classify(exc: Exception) -> SendFailure:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        transient = all(400 <= c < 500 for c in codes)
        return SendFailure(f"SMTP refused the recipient: {exc.recipients}", transient=transient)
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return SendFailure(f"SMTP {code} {text}".strip(), transient=400 <= code < 500)
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # e.g. AUTH or STARTTLS not offered: configuration
        return SendFailure(f"SMTP server does not support what the settings ask: {exc}", transient=False)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SendFailure(f"SMTP server certificate not trusted: {exc}", transient=False)
    # smtplib.SMTPException is an OSError: disconnects, refused connections, timeouts, TLS errors.
    if isinstance(exc, (OSError, socket.timeout, TimeoutError)):
        return SendFailure(f"SMTP connection problem: {type(exc).__name__}: {exc}", transient=True)
    raise exc


def send(settings: SmtpSettings, msg: EmailMessage) -> str:
    """Hand the message to the SMTP server; returns its Message-ID once the server accepted it."""
    context = ssl.create_default_context(cafile=settings.ca_file) if settings.tls != "none" else None
    try:
        if settings.tls == "tls":
            client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with client:
            if settings.tls == "starttls":
                client.starttls(context=context)
            if settings.user:
                client.login(settings.user, settings.password or "")
            refused = client.send_message(msg)
            if refused:  # only some of several recipients; we send to one at a time
                raise smtplib.SMTPRecipientsRefused(refused)
    except Exception as exc:  # noqa: BLE001 - classified, or re-raised when not an SMTP/network error
        raise _classify(exc) from exc
    return msg["Message-ID"]
