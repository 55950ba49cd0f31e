"""Who a report goes to: a recipient is a channel (email, webhook, bucket) and an address.

The string form, used on the command line and in control.schedules.recipients, is
`kind:address[;external][;principal=ID][;endpoint=URL]`, e.g. `email:ciso@acme.example`,
`email:auditor@partner.example;external`, `webhook:https://hooks.acme.example/reports`,
`bucket:s3://acme-reports/soc/;endpoint=http://127.0.0.1:9000`. The kind may be left out when
the address says it: a bare e-mail address, an http(s) URL, an s3:// prefix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CHANNELS = ("email", "webhook", "bucket")
SENSITIVE = ("confidential", "restricted")


class RecipientError(ValueError):
    """A recipient that cannot be understood; the message says what is expected."""


@dataclass(frozen=True)
class Recipient:
    kind: str
    address: str
    principal_id: str | None = None
    external: bool = False
    config: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in CHANNELS:
            raise RecipientError(f"recipient kind must be one of {', '.join(CHANNELS)}, not {self.kind!r}")
        if not self.address or not self.address.strip():
            raise RecipientError(f"a {self.kind} recipient needs an address")
        if self.kind == "email" and ("@" not in self.address or self.address.count("@") != 1):
            raise RecipientError(f"not an e-mail address: {self.address!r}")
        if self.kind == "webhook" and not self.address.startswith(("http://", "https://")):
            raise RecipientError(f"a webhook recipient needs an http(s) URL, not {self.address!r}")
        if self.kind == "bucket" and not self.address.startswith("s3://"):
            raise RecipientError(f"a bucket recipient needs an s3://bucket/prefix address, not {self.address!r}")

    @property
    def variant(self) -> str:
        """External recipients only ever receive the redacted 'external' variant."""
        return "external" if self.external else "internal"

    @property
    def domain(self) -> str | None:
        return self.address.rsplit("@", 1)[1].lower() if self.kind == "email" else None

    @property
    def identity(self) -> str:
        """What Gate C approves: channel, address, and whether the recipient is external."""
        address = self.address.lower() if self.kind == "email" else self.address
        return f"{self.kind}:{address}" + (";external" if self.external else "")

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "address": self.address, "principal_id": self.principal_id,
                "external": self.external, "config": dict(self.config)}

    @classmethod
    def parse(cls, text: str) -> Recipient:
        parts = [p.strip() for p in text.strip().split(";")]
        head = parts[0]
        if head.startswith(("http://", "https://")):  # the kind may be left out where the address says it
            head = "webhook:" + head
        elif head.startswith("s3://"):
            head = "bucket:" + head
        elif ":" not in head and "@" in head:
            head = "email:" + head
        if ":" not in head:
            raise RecipientError(f"recipient {text!r}: expected kind:address, e.g. email:ciso@acme.example")
        kind, address = head.split(":", 1)
        external, principal, config = False, None, {}
        for option in parts[1:]:
            if option == "external":
                external = True
            elif option.startswith("principal="):
                principal = option.split("=", 1)[1] or None
            elif option.startswith("endpoint="):
                config["endpoint_url"] = option.split("=", 1)[1]
            elif option:
                raise RecipientError(f"recipient {text!r}: unknown option {option!r} (external, principal=, endpoint=)")
        return cls(kind.strip().lower(), address.strip(), principal, external, config)


def distribution_hash(recipients: Iterable[Recipient | str], channels: Iterable[str]) -> str:
    """The hash of a sorted recipient+channel set: what an approval covers."""
    idents = sorted({(r if isinstance(r, Recipient) else Recipient.parse(r)).identity for r in recipients})
    canonical = json.dumps({"recipients": idents, "channels": sorted(set(channels))}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_key(run_id: str, recipient: Recipient) -> str:
    """One per run x recipient x channel; the e-mail Message-ID and webhook-id derive from it."""
    return hashlib.sha256(f"{run_id}|{recipient.identity}".encode()).hexdigest()[:32]
