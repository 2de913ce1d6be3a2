"""Moved to ``veil.auth.secrets``, ``veil.auth.keys`` and ``veil.ids``; kept for branches in flight."""

from veil.auth.keys import KEY_PREFIX, generate_api_key, hash_api_key
from veil.auth.secrets import load_server_secret, open_headers, seal_headers, webhook_secret
from veil.ids import new_id

__all__ = [
    "KEY_PREFIX",
    "generate_api_key",
    "hash_api_key",
    "load_server_secret",
    "new_id",
    "open_headers",
    "seal_headers",
    "webhook_secret",
]
