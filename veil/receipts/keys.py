"""The Ed25519 key that signs receipts, and the public keys that verify them.

Layout of ``<dir>`` (``VEIL_DATA_DIR/receipt-keys`` by default)::

    signing-key.pem          the current private key (PKCS#8 PEM, mode 0600), made on first use
    <key id>.pub.pem         the public key of every key that ever signed here, current one included

``VEIL_RECEIPT_KEY_FILE`` names a private key to use instead (e.g. a mounted secret shared by every
API replica); its public key is published beside the ones in ``<dir>``. ``rotate`` makes a new
signing key and keeps the old public key published, so receipts signed before still verify.
A key id is ``ed25519:`` plus the first 16 hex digits of the SHA-256 of the raw public key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from filelock import FileLock

from veil.errors import VeilError

__all__ = ["Keyring", "PublicKey", "ReceiptKeyError", "key_id_of", "load_public_keys"]

_SIGNING = "signing-key.pem"


class ReceiptKeyError(VeilError):
    """A receipt key file that cannot be read or is not an Ed25519 key."""

    code = "receipt_key_error"


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public: Ed25519PublicKey) -> str:
    return "ed25519:" + hashlib.sha256(_raw(public)).hexdigest()[:16]


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    key: Ed25519PublicKey

    @property
    def pem(self) -> str:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def public(self, *, current: bool) -> dict[str, Any]:
        """As ``GET /v1/receipt-keys`` and ``veil receipts keys`` publish it."""
        return {
            "key_id": self.key_id,
            "alg": "Ed25519",
            "public_key": base64.b64encode(_raw(self.key)).decode("ascii"),
            "public_key_pem": self.pem,
            "current": current,
        }

    def verifies(self, signature: bytes, payload: bytes) -> bool:
        try:
            self.key.verify(signature, payload)
        except InvalidSignature:
            return False
        return True


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ReceiptKeyError(f"cannot read the receipt signing key {path.name}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ReceiptKeyError(f"the receipt signing key {path.name} is not an Ed25519 key")
    return key


def _public_from_pem(data: bytes, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ReceiptKeyError(f"{where} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ReceiptKeyError(f"{where} is not an Ed25519 public key")
    return key


def load_public_keys(path: Path) -> list[PublicKey]:
    """Public keys from a file: a PEM public key, a PEM private key (its public half), or the JSON of
    ``GET /v1/receipt-keys`` / ``veil receipts keys --json``. A directory: every ``*.pub.pem`` in it."""
    if path.is_dir():
        found: list[PublicKey] = []
        for item in sorted(path.glob("*.pub.pem")):
            found.extend(load_public_keys(item))
        return found
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReceiptKeyError(f"cannot read the public key file {path.name}") from exc
    text = data.lstrip()
    if text.startswith(b"{"):
        try:
            listed = json.loads(text)["keys"]
            publics = [_public_from_pem(k["public_key_pem"].encode(), path.name) for k in listed]
            return [PublicKey(key_id_of(p), p) for p in publics]  # ids recomputed, never trusted
        except (KeyError, TypeError, ValueError) as exc:
            raise ReceiptKeyError(f"{path.name} is not a list of receipt keys") from exc
    if b"PRIVATE KEY" in text:
        private = _load_private(path)
        public = private.public_key()
    else:
        public = _public_from_pem(data, path.name)
    return [PublicKey(key_id_of(public), public)]


class Keyring:
    """The current signing key plus every published public key."""

    def __init__(self, private: Ed25519PrivateKey, published: list[PublicKey]) -> None:
        self._private = private
        self.key_id = key_id_of(private.public_key())
        keys = {k.key_id: k for k in published}
        keys.setdefault(self.key_id, PublicKey(self.key_id, private.public_key()))
        self.public_keys = keys

    @classmethod
    def load(cls, directory: Path, *, key_file: Path | None = None) -> Keyring:
        """The keyring of ``directory``, creating its signing key on first use (under a file lock, so
        two processes starting together agree on one key). ``key_file`` overrides the signing key."""
        directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(directory / ".lock")):
            if key_file is not None:
                private = _load_private(key_file)
            else:
                path = directory / _SIGNING
                if not path.exists():
                    _write_private(path, Ed25519PrivateKey.generate())
                private = _load_private(path)
            _publish(directory, private.public_key())
        return cls(private, load_public_keys(directory))

    @classmethod
    def rotate(cls, directory: Path) -> Keyring:
        """A new signing key for ``directory``; the old public key stays published."""
        directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(directory / ".lock")):
            old = directory / _SIGNING
            if old.exists():
                _publish(directory, _load_private(old).public_key())
            private = Ed25519PrivateKey.generate()
            _write_private(old, private)
            _publish(directory, private.public_key())
        return cls(private, load_public_keys(directory))

    def sign(self, payload: bytes) -> bytes:
        return self._private.sign(payload)

    def published(self) -> list[dict[str, Any]]:
        """Every public key, current first."""
        keys = sorted(self.public_keys.values(), key=lambda k: (k.key_id != self.key_id, k.key_id))
        return [k.public(current=k.key_id == self.key_id) for k in keys]


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    part = path.with_suffix(".part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
    finally:
        os.close(fd)
    os.replace(part, path)


def _publish(directory: Path, public: Ed25519PublicKey) -> None:
    path = directory / f"{key_id_of(public).replace(':', '-')}.pub.pem"
    if not path.exists():
        path.write_text(PublicKey(key_id_of(public), public).pem)
