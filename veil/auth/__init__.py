"""Who is calling and what it may do: Veil's own API keys (stored hashed) and, beside them, OAuth 2.0 /
OIDC bearer tokens (``oidc``); the server secret; the audit log; per-key rate limits.

Beside ``jobs`` (the job lifecycle), not inside it. Nothing here imports ``veil.jobs``: the job store
and the API build on it.
"""

from veil.auth.audit import append_audit, list_audit
from veil.auth.keys import (
    KEY_PREFIX,
    create_api_key,
    find_api_key,
    generate_api_key,
    get_api_key,
    hash_api_key,
    list_api_keys,
    revoke_api_key,
    touch_api_key,
)
from veil.auth.oidc import OidcConfig, OidcIdentity, OidcVerifier, TokenInvalid, looks_like_jwt
from veil.auth.ratelimit import DatabaseRateLimiter, Limiter, RateLimiter, retry_after, take_rate_token
from veil.auth.schemas import SCOPES, Scope
from veil.auth.secrets import load_server_secret, open_headers, seal_headers, webhook_secret

__all__ = [
    "KEY_PREFIX",
    "SCOPES",
    "DatabaseRateLimiter",
    "Limiter",
    "OidcConfig",
    "OidcIdentity",
    "OidcVerifier",
    "RateLimiter",
    "Scope",
    "TokenInvalid",
    "append_audit",
    "create_api_key",
    "find_api_key",
    "generate_api_key",
    "get_api_key",
    "hash_api_key",
    "list_api_keys",
    "list_audit",
    "load_server_secret",
    "looks_like_jwt",
    "open_headers",
    "retry_after",
    "revoke_api_key",
    "seal_headers",
    "take_rate_token",
    "touch_api_key",
    "webhook_secret",
]
