"""The multipart reader of ``POST /v1/jobs`` (``receive_upload``) against bodies real clients and attackers
send: the file goes to a scratch file as it arrives (hashed, its name dropped), the spec is kept as text,
and every malformed, oversized, stalled or unknown part is refused with a stable error, leaving no scratch
file behind."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from tests.api.conftest import Api
from veil.api.errors import BadRequest, UnsupportedContentType, UploadTooLarge
from veil.api.params import UnknownParameter
from veil.api.upload import Upload, receive_upload


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


BOUNDARY = "veil-test-boundary"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 64


def _part(name: str, data: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"


def _body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _request(
    body: bytes,
    *,
    content_type: str = f"multipart/form-data; boundary={BOUNDARY}",
    content_length: int | None = None,
    chunk: int = 1000,
) -> Request:
    """A request whose body arrives in ``chunk``-byte pieces, as from a slow client."""
    pieces: Iterable[bytes] = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    messages = [{"type": "http.request", "body": p, "more_body": True} for p in pieces]
    messages[-1]["more_body"] = False
    length = len(body) if content_length is None else content_length
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/v1/jobs",
        "headers": [(b"content-type", content_type.encode()), (b"content-length", str(length).encode())],
    }

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return Request(scope, receive)


def _receive(request: Request, scratch: Path, *, max_bytes: int = 1 << 20) -> Upload:
    return asyncio.run(receive_upload(request, scratch_dir=scratch, max_bytes=max_bytes))


def test_the_file_is_streamed_to_scratch_and_hashed(tmp_path: Path) -> None:
    body = _body(_part("file", JPEG, "Holiday Photo.JPG"), _part("spec", b'{"method": "black"}'))
    upload = _receive(_request(body, chunk=333), tmp_path)
    assert upload.path is not None and upload.path.parent == tmp_path
    assert upload.path.read_bytes() == JPEG and upload.size == len(JPEG)
    assert upload.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert upload.suffix == ".jpg", "a known media suffix is kept, lower-cased"
    assert "Holiday" not in upload.path.name, "the client's file name is dropped"
    assert upload.spec_text == '{"method": "black"}'
    upload.discard()
    assert not upload.path.exists()


@pytest.mark.parametrize(
    ("filename", "suffix"),
    [("clip.MP4", ".mp4"), ("x.exe", ""), ("../../etc/passwd", ""), ("noext", ""), ("a.tar.gz", "")],
)
def test_only_known_media_suffixes_survive_from_the_name(filename: str, suffix: str, tmp_path: Path) -> None:
    upload = _receive(_request(_body(_part("file", JPEG, filename))), tmp_path)
    assert upload.suffix == suffix
    assert upload.path is not None and upload.path.parent == tmp_path and upload.path.name.endswith(suffix)


def test_a_spec_alone_is_a_request_without_a_file(tmp_path: Path) -> None:
    upload = _receive(_request(_body(_part("spec", b'{"source_job": "job_1"}'))), tmp_path)
    assert upload.path is None and upload.size == 0 and upload.spec_text == '{"source_job": "job_1"}'
    upload.discard()  # nothing to remove is fine


@pytest.mark.parametrize(
    ("request_args", "error", "message"),
    [
        ({"body": b"{}", "content_type": "application/json"}, UnsupportedContentType, "multipart/form-data"),
        ({"body": b"", "content_type": "multipart/form-data"}, UnsupportedContentType, "multipart/form-data"),
        (
            {"body": _body(_part("file", JPEG, "a.jpg")), "content_length": 5 << 20},
            UploadTooLarge,
            "limit of 1 MB",
        ),
        ({"body": _body(_part("file", b"\0" * ((1 << 20) + 1), "a.jpg"))}, UploadTooLarge, "limit of 1 MB"),
        (
            {"body": _body(_part("file", JPEG, "a.jpg"), _part("file", JPEG, "b.jpg"))},
            BadRequest,
            "one `file` per job",
        ),
        ({"body": _body(_part("spec", b"{}"), _part("spec", b"{}"))}, BadRequest, "one `spec` per job"),
        ({"body": _body(_part("spec", b" " * ((1 << 20) + 1)))}, BadRequest, "larger than 1 MiB"),
        ({"body": _body(_part("spec", b'{"method": "\xff\xfe"}'))}, BadRequest, "must be UTF-8 JSON"),
        ({"body": _body(_part("file", JPEG, "a.jpg"))[:-40]}, BadRequest, "ended early"),
        ({"body": f"--{BOUNDARY}\r\nbroken".encode()}, BadRequest, "malformed multipart body|ended early"),
        (
            {
                "body": _body(
                    _part("image", JPEG, "a.jpg"), _part("blacken", b"1"), _part("file", JPEG, "a.jpg")
                )
            },
            UnknownParameter,
            "`image`.*`blacken`",
        ),
    ],
    ids=[
        "json-body",
        "no-boundary",
        "declared-too-large",
        "streamed-too-large",
        "two-files",
        "two-specs",
        "huge-spec",
        "spec-not-utf8",
        "truncated",
        "garbage",
        "unknown-fields",
    ],
)
def test_bad_bodies_are_refused_and_leave_no_scratch_file(
    request_args: dict[str, Any], error: type[Exception], message: str, tmp_path: Path
) -> None:
    with pytest.raises(error, match=message):
        _receive(_request(**request_args), tmp_path)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_unknown_fields_name_the_veil_equivalent(tmp_path: Path) -> None:
    body = _body(_part("file", JPEG, "a.jpg"), _part("callbackUrl", b"https://example.org/hook"))
    with pytest.raises(UnknownParameter) as info:
        _receive(_request(body), tmp_path)
    assert "`callbackUrl`" in str(info.value) and '"webhook"' in str(info.value)
    assert "`file`, `spec`" in str(info.value), "the message lists what the endpoint takes"
