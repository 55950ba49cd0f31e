"""The signed envelope beside each manifest (`SIGNATURE`, artifacts/store.py): DSSE (the in-toto attestation envelope).

`manifest.sig.json` = {payloadType, payload: base64(manifest.json bytes), signatures: [{keyid,
sig}]}, where `sig` is Ed25519 over the DSSE pre-authentication encoding
"DSSEv1 <len(type)> <type> <len(payload)> <payload>" (lengths in bytes, ASCII decimal). Signing
the encoding, not the bare payload, binds the payload type too.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature

from orchestration.artifacts.store import SIGNATURE
from orchestration.provenance.keys import PublicKey, SigningKey

PAYLOAD_TYPE = "application/vnd.nexus-reports.manifest+json"


class EnvelopeError(ValueError):
    """The envelope is malformed, or no signature in it verifies."""


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]  # (key id, signature)


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign(payload: bytes, key: SigningKey, payload_type: str = PAYLOAD_TYPE) -> bytes:
    """The envelope's bytes (JSON) for `payload`, signed by `key`."""
    signature = key.sign(pae(payload_type, payload))
    return json.dumps({
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key.keyid, "sig": base64.b64encode(signature).decode()}],
    }, indent=2).encode()


def parse(data: bytes) -> Envelope:
    try:
        raw = json.loads(data)
        signatures = tuple((str(s["keyid"]), base64.b64decode(s["sig"], validate=True)) for s in raw["signatures"])
        envelope = Envelope(str(raw["payloadType"]), base64.b64decode(raw["payload"], validate=True), signatures)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise EnvelopeError(f"{SIGNATURE} is not a DSSE envelope: {exc}") from exc
    if not signatures:
        raise EnvelopeError(f"{SIGNATURE} holds no signature")
    return envelope


def verify(envelope: Envelope, keys: dict[str, PublicKey]) -> str:
    """The key id of the first signature that verifies; EnvelopeError naming why none does."""
    if envelope.payload_type != PAYLOAD_TYPE:
        raise EnvelopeError(f"payload type is {envelope.payload_type!r}, not {PAYLOAD_TYPE!r}")
    message = pae(envelope.payload_type, envelope.payload)
    problems = []
    for keyid, signature in envelope.signatures:
        key = keys.get(keyid)
        if key is None:
            problems.append(f"key id {keyid} is not in the keyring ({', '.join(sorted(keys)) or 'empty'})")
            continue
        try:
            key.key.verify(signature, message)
        except InvalidSignature:
            problems.append(f"the signature by key {keyid} does not verify")
            continue
        return keyid
    raise EnvelopeError("; ".join(problems))
