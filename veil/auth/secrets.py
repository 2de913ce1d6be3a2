"""Secrets the service derives or generates: API keys, the server secret, webhook secrets.

* API keys are made and hashed by ``veil.auth.keys``.
* The server secret signs download links and derives webhook secrets. It comes from
  ``VEIL_SECRET_KEY`` or is generated once into ``VEIL_DATA_DIR/secret_key`` (mode 0600).
* A key's webhook secret is ``HMAC(server secret, key id)``: shown once at key creation,
  never stored, and recomputable by any worker that has the server secret.
* Webhook custom headers (a receiver's own ``Authorization``) are stored sealed: Fernet
  (AES-128-CBC plus HMAC-SHA256, from ``cryptography``) with a key derived from the server secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from veil.errors import JobError
from veil.settings import Settings

__all__ = ["load_server_secret", "open_headers", "seal_headers", "webhook_secret"]


def load_server_secret(settings: Settings) -> bytes:
    """``VEIL_SECRET_KEY``, or the secret in ``VEIL_DATA_DIR/secret_key``, created on first use."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode("utf-8")
    path = Path(settings.data_dir) / "secret_key"
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secret
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value.hex())
        fh.flush()
        os.fsync(fh.fileno())
    return value


def webhook_secret(server_secret: bytes, key_id: str) -> str:
    """The webhook signing secret of API key ``key_id`` (``whsec_…``)."""
    digest = hmac.new(server_secret, f"webhook-secret:{key_id}".encode(), hashlib.sha256).hexdigest()
    return f"whsec_{digest}"


def _fernet(server_secret: bytes) -> Fernet:
    key = hmac.new(server_secret, b"webhook-headers:v1", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal_headers(server_secret: bytes, headers: dict[str, str]) -> str:
    """Encrypt and authenticate a webhook's custom headers for storage."""
    return _fernet(server_secret).encrypt(json.dumps(headers).encode("utf-8")).decode("ascii")


def open_headers(server_secret: bytes, sealed: str) -> dict[str, str]:
    """The headers ``seal_headers`` sealed; ``JobError`` when the server secret changed since."""
    try:
        data = json.loads(_fernet(server_secret).decrypt(sealed.encode("ascii")))
    except (InvalidToken, ValueError) as exc:
        raise JobError("the webhook's custom headers cannot be opened: VEIL_SECRET_KEY changed") from exc
    return {str(k): str(v) for k, v in data.items()}
