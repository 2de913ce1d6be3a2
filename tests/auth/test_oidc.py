"""OIDC bearer tokens, verified with PyJWT against a JWKS served over HTTP by a provider made in the test."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.auth.idp import AUDIENCE, ISSUER, IdentityProvider
from veil.auth import OidcConfig, OidcVerifier, TokenInvalid, looks_like_jwt


def impostor_token() -> str:
    """Signed by another RSA key that claims the provider's key id."""
    other = IdentityProvider(kid="test-key-1")
    other.close()
    return other.token()


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    yield provider
    provider.close()


@pytest.fixture
def verifier(idp: IdentityProvider) -> OidcVerifier:
    return OidcVerifier(OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=idp.jwks_url, leeway_s=0))


def test_a_valid_token_maps_to_tenant_and_scopes(idp: IdentityProvider, verifier: OidcVerifier) -> None:
    token = idp.token()
    assert looks_like_jwt(token) and not looks_like_jwt("veil_abc")
    identity = verifier.verify(token)
    assert identity.tenant == "acme" and identity.scopes == {"jobs:read", "jobs:write"}
    assert identity.caller_id.startswith("oidc_") and "user-7f3a" not in identity.caller_id
    assert verifier.verify(idp.token(scope=["admin", "openid"])).scopes == {"admin"}
    assert verifier.verify(token).caller_id == identity.caller_id, "stable per issuer and subject"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda idp: idp.token(exp=int(time.time()) - 60), "the token has expired"),
        (lambda idp: idp.token(nbf=int(time.time()) + 600), "not valid yet"),
        (lambda idp: idp.token(aud="another-api"), "another audience"),
        (lambda idp: idp.token(iss="https://evil.example.test"), "another issuer"),
        (lambda idp: idp.token(exp=None), "lacks the 'exp' claim"),
        (lambda idp: idp.forged_none(), "algorithm 'none' is not accepted"),
        (lambda idp: idp.forged_hs256_with_public_key(), "algorithm 'HS256' is not accepted"),
        (lambda idp: idp.token(kid="unknown-kid"), "key id (kid) is not among"),
        (lambda idp: idp.token(veil_tenant=None), "no usable 'veil_tenant' claim"),
        (lambda idp: impostor_token(), "signature does not verify"),
        (lambda idp: "eyJ!!.e30.xx", "not a well-formed JWT"),
    ],
)
def test_bad_tokens_are_refused_with_the_reason(
    idp: IdentityProvider, verifier: OidcVerifier, make, reason: str
) -> None:
    with pytest.raises(TokenInvalid, match=re.escape(reason)) as caught:
        verifier.verify(make(idp))
    assert caught.value.code == "unauthorized"


def test_hs256_is_refused_even_when_configured(idp: IdentityProvider) -> None:
    with pytest.raises(ValueError, match="asymmetric"):
        OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=idp.jwks_url, algorithms=("RS256", "HS256"))
    with pytest.raises(ValueError, match="exactly one"):
        OidcConfig(issuer=ISSUER, audience=AUDIENCE)


def test_a_jwks_file_works_air_gapped(idp: IdentityProvider, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(idp.jwks))
    verifier = OidcVerifier(OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_file=path))
    assert verifier.verify(idp.token()).tenant == "acme"
    with pytest.raises(TokenInvalid, match="kid"):
        verifier.verify(idp.token(kid="other"))


def test_default_tenant_and_keys_are_cached(idp: IdentityProvider) -> None:
    verifier = OidcVerifier(
        OidcConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=idp.jwks_url, default_tenant="main")
    )
    before = idp.fetches
    assert verifier.verify(idp.token(veil_tenant=None)).tenant == "main"
    for _ in range(3):
        verifier.verify(idp.token())
    assert idp.fetches - before == 1, "the JWKS is fetched once and cached"
