"""Signed links: valid without a key, 403 when tampered with or expired."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from tests.api.conftest import Api
from veil.clock import ManualClock


def test_signed_link_downloads_without_a_key_until_it_expires(make_api: Callable[..., Api]) -> None:
    clock = ManualClock()
    api = make_api(clock=clock)
    h = api.key()
    job = api.submit(h, params={"wait": 10}).json()
    link = api.client.post(f"/v1/jobs/{job['id']}/links", headers=h, json={"expires_in": 2})
    assert link.status_code == 201
    url = urlsplit(link.json()["url"])
    path = f"{url.path}?{url.query}"
    ok = api.client.get(path)
    assert ok.status_code == 200 and ok.content == (api.media / "street.jpg").read_bytes()
    assert api.client.get(path, headers={"Range": "bytes=0-3"}).status_code == 206

    query = parse_qs(url.query)
    tampered_sig = f"{url.path}?expires={query['expires'][0]}&sig={'0' * 64}"
    longer = f"{url.path}?expires={int(query['expires'][0]) + 3600}&sig={query['sig'][0]}"
    other_job = f"/v1/links/job_other?expires={query['expires'][0]}&sig={query['sig'][0]}"
    for bad in (tampered_sig, longer, other_job):
        r = api.client.get(bad)
        assert r.status_code == 403 and r.json()["error"]["code"] == "link_invalid", bad

    clock.advance(1)
    assert api.client.get(path).status_code == 200, "still valid a second later"
    clock.advance(1)  # the server's clock passes the 2 s lifetime: no sleeping
    expired = api.client.get(path)
    assert expired.status_code == 403 and expired.json()["error"]["code"] == "link_expired"


def test_default_link_lifetime_is_a_day(api: Api) -> None:
    h = api.key()
    job = api.submit(h, params={"wait": 10}).json()
    link = api.client.post(f"/v1/jobs/{job['id']}/links", headers=h).json()
    expires = int(parse_qs(urlsplit(link["url"]).query)["expires"][0])
    assert abs(expires - time.time() - 86400) < 60
