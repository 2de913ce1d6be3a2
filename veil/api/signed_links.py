"""Signed download links: ``/v1/links/<job id>?expires=<unix>&sig=<hex>``, valid without an API key.

``sig`` is HMAC-SHA256 over ``"link:v1:<job id>:<expires>"`` with the server secret (for a link to the
job's source, ``/v1/links/<job id>?file=source&...``, over ``"link:v1:source:<job id>:<expires>"``), so
changing the job id or the expiry breaks it (403 ``link_invalid``), and an honest link
stops working at ``expires`` (403 ``link_expired``). Revocation is by deleting the job.
"""

from __future__ import annotations

import hashlib
import hmac

from veil.api.errors import LinkExpired, LinkInvalid

__all__ = ["sign_link", "verify_link"]


def _mac(secret: bytes, job_id: str, expires: int, file: str) -> str:
    what = f"{job_id}" if file == "result" else f"{file}:{job_id}"
    return hmac.new(secret, f"link:v1:{what}:{expires}".encode(), hashlib.sha256).hexdigest()


def sign_link(secret: bytes, *, job_id: str, expires: int, file: str = "result") -> str:
    return _mac(secret, job_id, expires, file)


def verify_link(
    secret: bytes, *, job_id: str, expires: int, sig: str, now: float, file: str = "result"
) -> None:
    """Raise ``LinkInvalid`` (tampered) or ``LinkExpired``; return if the link is good."""
    expected = _mac(secret, job_id, expires, file)
    if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
        raise LinkInvalid("the link signature does not match")
    if now >= expires:
        raise LinkExpired("the link has expired; create a new one")
