"""``/v1/jobs/{id}/receipt`` and ``/v1/receipt-keys`` in process (the signed, verified receipt of a real job
is in ``tests/api/test_trust_live.py``)."""

from __future__ import annotations

from collections.abc import Callable

from tests.api.conftest import Api


def test_only_succeeded_jobs_have_receipts(make_api: Callable[..., Api]) -> None:
    api = make_api(workers=0)
    h = api.key()
    job = api.submit(h).json()
    assert job["receipt_url"] is None
    r = api.client.get(f"/v1/jobs/{job['id']}/receipt", headers=h)
    assert r.status_code == 409 and "only succeeded jobs have a receipt" in r.json()["error"]["message"]
    other = api.client.get(f"/v1/jobs/{job['id']}/receipt", headers=api.key(tenant="t2"))
    assert other.status_code == 404


def test_receipt_keys_are_public_and_stable(make_api: Callable[..., Api]) -> None:
    api = make_api(workers=0)
    first = api.client.get("/v1/receipt-keys").json()["keys"]
    assert len(first) == 1 and first[0]["alg"] == "Ed25519" and first[0]["current"]
    assert "PRIVATE" not in api.client.get("/v1/receipt-keys").text
    assert api.client.get("/v1/receipt-keys").json()["keys"] == first
