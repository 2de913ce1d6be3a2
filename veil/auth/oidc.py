"""OAuth 2.0 / OpenID Connect bearer tokens from the site's own identity provider (Keycloak, Entra ID, ...).

A token is a JWT signed by the provider. ``OidcVerifier.verify`` checks it with PyJWT: the signature
against the provider's JWKS (fetched from ``VEIL_OIDC_JWKS_URL`` and cached, or read from
``VEIL_OIDC_JWKS_FILE``), the algorithm against an allow-list of asymmetric ones only (so ``alg: none`` and
an HS256 token "signed" with the provider's public key are refused), and the ``exp``, ``nbf``, ``iss`` and
``aud`` claims (``exp``, ``iss`` and ``aud`` are required). Claims then map to a tenant
(``VEIL_OIDC_TENANT_CLAIM``, or ``VEIL_OIDC_DEFAULT_TENANT``) and to Veil scopes
(``VEIL_OIDC_SCOPES_CLAIM``: a space-separated string or a list; only ``jobs:read``, ``jobs:write`` and
``admin`` count). The caller's id is ``oidc_`` plus a hash of issuer and subject: stable, and no e-mail or
name reaches the job table, the audit log or a log line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

from veil.errors import VeilError

__all__ = [
    "ALLOWED_ALGORITHMS",
    "OidcConfig",
    "OidcIdentity",
    "OidcVerifier",
    "TokenInvalid",
    "looks_like_jwt",
]

ALLOWED_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Asymmetric algorithms only: a shared-secret (HS*) or unsigned (none) token is never accepted."""

VEIL_SCOPES: frozenset[str] = frozenset({"jobs:read", "jobs:write", "admin"})


class TokenInvalid(VeilError):
    """A bearer token that does not verify (401). The message names the reason, never the token."""

    code = "unauthorized"


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    audience: str
    jwks_url: str | None = None
    jwks_file: Path | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256", "EdDSA")
    tenant_claim: str = "veil_tenant"
    default_tenant: str | None = None
    scopes_claim: str = "scope"
    leeway_s: float = 30.0
    jwks_cache_s: int = 300

    def __post_init__(self) -> None:
        if (self.jwks_url is None) == (self.jwks_file is None):
            raise ValueError("OIDC needs exactly one of a JWKS URL or a JWKS file")
        refused = sorted(set(self.algorithms) - ALLOWED_ALGORITHMS)
        if refused or not self.algorithms:
            raise ValueError(
                f"OIDC algorithms must be asymmetric ones; refused: {', '.join(refused) or 'none'}"
            )


@dataclass(frozen=True)
class OidcIdentity:
    caller_id: str
    """``oidc_`` plus 24 hex digits of SHA-256(issuer, subject): stands where an API key id would."""
    tenant: str
    scopes: frozenset[str]


class OidcVerifier:
    def __init__(self, config: OidcConfig) -> None:
        self.config = config
        self._client = (
            PyJWKClient(config.jwks_url, cache_keys=True, lifespan=config.jwks_cache_s, timeout=10)
            if config.jwks_url is not None
            else None
        )
        self._file_keys: PyJWKSet | None = None

    def _key_for(self, token: str) -> PyJWK:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise TokenInvalid("the bearer token is not a well-formed JWT") from exc
        algorithm = str(header.get("alg", ""))
        if algorithm not in self.config.algorithms:
            raise TokenInvalid(f"token algorithm {algorithm[:20]!r} is not accepted")
        kid = header.get("kid")
        if self._client is not None:
            try:
                return self._client.get_signing_key_from_jwt(token)
            except jwt.PyJWKClientConnectionError as exc:
                raise TokenInvalid("the identity provider's keys (JWKS) could not be fetched") from exc
            except jwt.PyJWKClientError as exc:
                raise TokenInvalid(
                    "the token's key id (kid) is not among the identity provider's keys"
                ) from exc
        if self._file_keys is None:
            assert self.config.jwks_file is not None
            try:
                self._file_keys = PyJWKSet.from_json(self.config.jwks_file.read_text())
            except (OSError, ValueError, jwt.PyJWKSetError) as exc:
                raise TokenInvalid("the configured JWKS file cannot be read") from exc
        for key in self._file_keys.keys:
            if key.key_id == kid:
                return key
        raise TokenInvalid("the token's key id (kid) is not among the identity provider's keys")

    def verify(self, token: str) -> OidcIdentity:
        """The identity in a valid token; ``TokenInvalid`` saying why otherwise."""
        key = self._key_for(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=list(self.config.algorithms),
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenInvalid("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenInvalid("the token is not valid yet (nbf)") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenInvalid("the token is for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenInvalid("the token is from another issuer") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise TokenInvalid(f"the token lacks the {exc.claim!r} claim") from exc
        except jwt.InvalidSignatureError as exc:
            raise TokenInvalid("the token's signature does not verify") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenInvalid(f"the token is invalid ({type(exc).__name__})") from exc
        return self._identity(claims)

    def _identity(self, claims: dict[str, Any]) -> OidcIdentity:
        tenant = claims.get(self.config.tenant_claim, self.config.default_tenant)
        if not isinstance(tenant, str) or not tenant or len(tenant) > 64:
            raise TokenInvalid(f"the token carries no usable {self.config.tenant_claim!r} claim (tenant)")
        raw = claims.get(self.config.scopes_claim, "")
        values = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
        scopes = frozenset(str(v) for v in values) & VEIL_SCOPES
        subject = json.dumps([claims["iss"], claims["sub"]])
        caller = "oidc_" + hashlib.sha256(subject.encode()).hexdigest()[:24]
        return OidcIdentity(caller_id=caller, tenant=tenant, scopes=scopes)
