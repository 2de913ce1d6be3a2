"""The multipart reader of ``POST /v1/jobs`` against bodies real clients and attackers send."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import Api


def _multipart(boundary: str, disposition: str, payload: bytes) -> bytes:
    return (
        f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: image/jpeg\r\n\r\n".encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )


def _post(api: Api, headers: dict[str, str], boundary: str, body: bytes) -> Any:
    return api.client.post(
        "/v1/jobs",
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body,
    )


def test_a_boundary_the_parser_refuses_is_a_400(api: Api) -> None:
    boundary = "b" * 300  # python-multipart refuses more than 256 when the parser is built
    body = _multipart(boundary, 'form-data; name="file"; filename="x.jpg"', b"\xff\xd8")
    r = _post(api, api.key(), boundary, body)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_request")


@pytest.mark.parametrize(
    "disposition",
    [
        'form-data; name="file"; filename="a\\"b.jpg"',  # escaped, as curl sends it
        'form-data; name="file"; filename="a"b.jpg"',  # unescaped, name first
        'form-data; filename="a"; b.jpg"; name="file"',  # unescaped, name last
    ],
)
def test_a_file_name_holding_a_quote_is_accepted(api: Api, disposition: str) -> None:
    photo = (api.media / "street.jpg").read_bytes()
    r = _post(api, api.key(), "xyzzy", _multipart("xyzzy", disposition, photo))
    assert r.status_code in (200, 202), r.text


def _call(api: Api, headers: dict[str, str], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drive the ASGI app directly with ``messages`` as what the client sends; then wait forever."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/jobs",
        "raw_path": b"/v1/jobs",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"multipart/form-data; boundary=xyzzy"),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(api.client.app(scope, receive, send), 20))  # type: ignore[arg-type]
    return sent


def test_a_client_that_disconnects_mid_upload_is_logged_as_such_without_a_traceback(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    h = api.key()
    head = _multipart("xyzzy", 'form-data; name="file"; filename="x.jpg"', b"\xff\xd8" * 1000)[:500]
    with caplog.at_level(logging.INFO):
        sent = _call(
            api, h, [{"type": "http.request", "body": head, "more_body": True}, {"type": "http.disconnect"}]
        )
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] < 500
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert any("client disconnected" in r.getMessage() for r in caplog.records)
    assert list(api.services.ctx.scratch_dir.iterdir()) == [], "the partial upload is removed"


def test_a_stalled_upload_gets_408_after_the_body_timeout(make_api: Callable[..., Api]) -> None:
    api = make_api(body_timeout_s=0.3)
    head = _multipart("xyzzy", 'form-data; name="file"; filename="x.jpg"', b"\xff\xd8" * 1000)[:500]
    sent = _call(api, api.key(), [{"type": "http.request", "body": head, "more_body": True}])
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 408 and b"request_timeout" in body
    assert list(api.services.ctx.scratch_dir.iterdir()) == []
