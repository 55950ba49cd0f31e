"""The deployment's Ed25519 signing key and the keyring of every public key it ever had.

`$NEXUS_HOME/signing/current.key` is the private key (PKCS#8 PEM, mode 0600: only the service
reads it); `$NEXUS_HOME/signing/keyring/<key id>.pub` holds each public key (PEM). Rotation makes
a new current key and keeps the old public keys, so runs signed before it stay verifiable. A key
id is the first 16 hex characters of the sha256 of the raw 32-byte public key.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from orchestration.settings import Settings

PRIVATE = "current.key"
KEYRING = "keyring"


class SigningKeyError(RuntimeError):
    """A signing or public key is missing or unreadable."""


@dataclass(frozen=True)
class PublicKey:
    keyid: str
    key: Ed25519PublicKey

    @property
    def pem(self) -> str:
        return public_pem(self.key).decode()


@dataclass(frozen=True)
class SigningKey:
    keyid: str
    key: Ed25519PrivateKey

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.keyid, self.key.public_key())


def signing_dir(settings: Settings) -> Path:
    return settings.home / "signing"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def ensure_key(settings: Settings) -> tuple[SigningKey, bool]:
    """The current signing key, created when there is none: (key, created). Idempotent; two
    processes racing to create it end with the one that won (exclusive create)."""
    path = signing_dir(settings) / PRIVATE
    if path.exists():
        return current(settings), False
    try:
        _write_new(path)
    except FileExistsError:
        return current(settings), False
    key = current(settings)
    _keep_public(settings, key.public)
    return key, True


def rotate(settings: Settings) -> tuple[SigningKey, SigningKey | None]:
    """A new current key; the old public key stays in the keyring. Returns (new, old)."""
    path = signing_dir(settings) / PRIVATE
    old = current(settings) if path.exists() else None
    if old is not None:
        _keep_public(settings, old.public)
    fresh = path.with_name(PRIVATE + ".new")
    fresh.unlink(missing_ok=True)
    _write_new(fresh)
    fresh.replace(path)  # one rename: a publish in between signs with the old key, still in the keyring
    key = current(settings)
    _keep_public(settings, key.public)
    return key, old


def current(settings: Settings) -> SigningKey:
    path = signing_dir(settings) / PRIVATE
    try:
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise SigningKeyError(f"no signing key at {path}: run `nexus-reports init`") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"{path} is not a PEM private key: {exc}") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 key")
    return SigningKey(key_id(private.public_key()), private)


def keyring(settings: Settings) -> dict[str, PublicKey]:
    """Every public key this deployment signed with, by key id."""
    folder = signing_dir(settings) / KEYRING
    found = {}
    for path in sorted(folder.glob("*.pub")) if folder.exists() else []:
        key = load_public(path)
        found[key.keyid] = key
    return found


def load_public(path: Path) -> PublicKey:
    try:
        public = serialization.load_pem_public_key(Path(path).read_bytes())
    except FileNotFoundError as exc:
        raise SigningKeyError(f"no public key file {path}") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(f"{path} is not a PEM public key: {exc}") from exc
    if not isinstance(public, Ed25519PublicKey):
        raise SigningKeyError(f"{path} is not an Ed25519 public key")
    return PublicKey(key_id(public), public)


def _write_new(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, not even briefly
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())


def _keep_public(settings: Settings, public: PublicKey) -> None:
    folder = signing_dir(settings) / KEYRING
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{public.keyid}.pub"
    if not target.exists():
        target.write_bytes(public_pem(public.key))
