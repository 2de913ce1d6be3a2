from __future__ import annotations

from tests.api.conftest import Api


def test_account_shows_the_key_usage_and_limits(api: Api) -> None:
    h = api.key(tenant="acme", rate=120)
    api.submit(h, params={"wait": 10})
    account = api.client.get("/v1/account", headers=h).json()
    assert account["key"]["tenant"] == "acme" and account["key"]["scopes"] == ["jobs:read", "jobs:write"]
    assert "key" not in account["key"] or not account["key"].get("key"), "the secret is never shown again"
    assert account["usage"]["jobs_by_state"]["succeeded"] == 1 and account["usage"]["bytes_in"] > 0
    assert account["limits"]["rate_limit_per_minute"] == 120 and account["limits"]["retention_hours"] == 24
