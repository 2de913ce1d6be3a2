from __future__ import annotations

import pytest

from veil.api.errors import LinkExpired, LinkInvalid
from veil.api.signed_links import sign_link, verify_link

SECRET = b"k" * 32


def test_a_fresh_link_verifies() -> None:
    sig = sign_link(SECRET, job_id="job_1", expires=1000)
    verify_link(SECRET, job_id="job_1", expires=1000, sig=sig, now=999)


@pytest.mark.parametrize(
    ("job_id", "expires", "secret"),
    [("job_2", 1000, SECRET), ("job_1", 2000, SECRET), ("job_1", 1000, b"other secret")],
)
def test_any_change_breaks_the_signature(job_id: str, expires: int, secret: bytes) -> None:
    sig = sign_link(SECRET, job_id="job_1", expires=1000)
    with pytest.raises(LinkInvalid):
        verify_link(secret, job_id=job_id, expires=expires, sig=sig, now=0)


def test_an_honest_link_expires() -> None:
    sig = sign_link(SECRET, job_id="job_1", expires=1000)
    with pytest.raises(LinkExpired):
        verify_link(SECRET, job_id="job_1", expires=1000, sig=sig, now=1000)


def test_non_ascii_signatures_are_invalid_not_errors() -> None:
    with pytest.raises(LinkInvalid):
        verify_link(SECRET, job_id="job_1", expires=1000, sig="é" * 64, now=0)
