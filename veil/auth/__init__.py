"""Who is calling: Veil's own API keys and, beside them, OAuth 2.0 / OIDC bearer tokens (``oidc``)."""

from veil.auth.oidc import OidcConfig, OidcIdentity, OidcVerifier, TokenInvalid, looks_like_jwt

__all__ = ["OidcConfig", "OidcIdentity", "OidcVerifier", "TokenInvalid", "looks_like_jwt"]
