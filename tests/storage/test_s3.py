"""S3Storage against a real S3 HTTP server (moto, started by tests/s3server.py): plain and multipart
uploads under a prefix, copies, paginated deletes, presigned links and mapped errors. The behaviour every
backend shares is in ``test_contract.py``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest

from veil.errors import StorageError, StorageNotFound
from veil.settings import Settings
from veil.storage.s3 import S3Storage

if TYPE_CHECKING:
    from tests.s3server import S3Server

# The fixtures s3_server and s3_bucket come from there (tests/conftest.py is shared and left alone).
pytest_plugins = ["tests.s3server"]

MiB = 1 << 20


@pytest.fixture(scope="module")
def big_payload() -> bytes:
    """Two full 8 MiB parts and a short tail: forces a 3-part multipart upload."""
    return np.random.default_rng(5).integers(0, 256, size=16 * MiB + 12345, dtype=np.uint8).tobytes()


@pytest.fixture
def storage(s3_server: S3Server, s3_bucket: str) -> S3Storage:
    settings = Settings(storage_url=f"s3://{s3_bucket}/veil/blobs", **_s3_fields(s3_server))
    return S3Storage.from_settings(settings)


def _s3_fields(server: S3Server) -> dict[str, Any]:
    return {
        "s3_endpoint_url": server.endpoint_url,
        "s3_region": server.region,
        "s3_access_key_id": server.access_key_id,
        "s3_secret_access_key": server.secret_access_key,
    }


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _read_all(storage: S3Storage, key: str, tmp_path: Path) -> bytes:
    dst = tmp_path / "download.bin"
    storage.get_file(key, dst)
    return dst.read_bytes()


def test_has_no_local_path(storage: S3Storage) -> None:
    assert storage.local_path("a/b") is None


def test_small_stream_roundtrip_under_prefix(
    storage: S3Storage, s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    data = b"hello veil " * 1000
    assert storage.put_stream("jobs/1/input.mp4", _chunks(data, 777)) == len(data)
    assert storage.exists("jobs/1/input.mp4")
    assert storage.size("jobs/1/input.mp4") == len(data)
    assert _read_all(storage, "jobs/1/input.mp4", tmp_path) == data
    # The key really lives under the configured prefix, in one plain PUT.
    head = s3_server.client().head_object(Bucket=s3_bucket, Key="veil/blobs/jobs/1/input.mp4")
    assert "-" not in head["ETag"]


def test_large_stream_uses_multipart(
    storage: S3Storage, s3_server: S3Server, s3_bucket: str, big_payload: bytes, tmp_path: Path
) -> None:
    assert storage.put_stream("big.bin", _chunks(big_payload, 1 * MiB + 1)) == len(big_payload)
    client = s3_server.client()
    head = client.head_object(Bucket=s3_bucket, Key="veil/blobs/big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # 8 MiB + 8 MiB + tail
    assert head["ContentLength"] == len(big_payload)
    got = _read_all(storage, "big.bin", tmp_path)
    assert hashlib.sha256(got).digest() == hashlib.sha256(big_payload).digest()
    assert client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_failing_stream_aborts_multipart_and_writes_nothing(
    storage: S3Storage, s3_server: S3Server, s3_bucket: str, big_payload: bytes
) -> None:
    class ClientGone(Exception):
        pass

    def broken() -> Iterator[bytes]:
        yield from _chunks(big_payload[: 9 * MiB], MiB)  # one part already uploaded
        raise ClientGone

    with pytest.raises(ClientGone):
        storage.put_stream("partial.bin", broken())
    assert not storage.exists("partial.bin")
    assert s3_server.client().list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_put_file_multipart_and_get_file(
    storage: S3Storage, s3_server: S3Server, s3_bucket: str, big_payload: bytes, tmp_path: Path
) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(big_payload)
    storage.put_file("out/result.mp4", src)
    head = s3_server.client().head_object(Bucket=s3_bucket, Key="veil/blobs/out/result.mp4")
    assert "-" in head["ETag"]  # multipart above the 8 MiB threshold
    assert _read_all(storage, "out/result.mp4", tmp_path) == big_payload


@pytest.mark.parametrize(
    ("start", "end", "chunk_size"),
    [(0, None, 1 << 20), (0, 0, 1), (10, 19, 3), (1000, None, 4096), (9999, 9999, 16)],
)
def test_iter_range_returns_inclusive_bytes(
    storage: S3Storage, start: int, end: int | None, chunk_size: int
) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    storage.put_stream("r.bin", [data])
    chunks = list(storage.iter_range("r.bin", start, end, chunk_size=chunk_size))
    expected = data[start : (None if end is None else end + 1)]
    assert b"".join(chunks) == expected
    assert all(len(c) <= chunk_size for c in chunks)


def test_ranges_at_and_past_the_end_read_empty(storage: S3Storage) -> None:
    storage.put_stream("r.bin", [b"0123456789"])
    assert list(storage.iter_range("r.bin", 10)) == []
    assert list(storage.iter_range("r.bin", 5, 4)) == []
    assert b"".join(storage.iter_range("r.bin", 8, 100)) == b"89"
    with pytest.raises(StorageNotFound):
        storage.iter_range("missing", 5, 4)


def test_move_promotes_and_removes_source(storage: S3Storage, big_payload: bytes, tmp_path: Path) -> None:
    storage.put_stream("tmp/a.part", [b"small"])
    storage.move("tmp/a.part", "final/a")
    assert not storage.exists("tmp/a.part")
    assert _read_all(storage, "final/a", tmp_path) == b"small"
    # Above part_size the managed copy switches to a multipart copy.
    storage.put_stream("tmp/big.part", _chunks(big_payload, 4 * MiB))
    storage.move("tmp/big.part", "final/big")
    assert not storage.exists("tmp/big.part")
    assert storage.size("final/big") == len(big_payload)


def test_delete_and_delete_prefix_are_paginated_and_scoped(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    storage = S3Storage(s3_bucket, "p", client=client, list_page_size=2)
    for key in ["jobs/1/a", "jobs/1/b", "jobs/1/sub/c", "jobs/1/sub/d", "jobs/1/e", "jobs/10/x", "jobs/2/y"]:
        storage.put_stream(key, [b"x"])
    client.put_object(Bucket=s3_bucket, Key="jobs/1/outside-prefix", Body=b"x")

    assert storage.delete_prefix("jobs/1/") == 5  # three pages of at most two keys
    assert storage.exists("jobs/10/x") and storage.exists("jobs/2/y")
    assert client.head_object(Bucket=s3_bucket, Key="jobs/1/outside-prefix")["ContentLength"] == 1
    assert storage.delete_prefix("jobs/1/") == 0

    storage.delete("jobs/2/y")
    assert not storage.exists("jobs/2/y")
    storage.delete("jobs/2/y")  # missing is fine


def test_presigned_url_downloads_without_credentials(storage: S3Storage) -> None:
    data = b"presigned payload"
    storage.put_stream("share/r.txt", [data])
    url = storage.presign("share/r.txt", 60)
    assert url is not None
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url
    reply = httpx.get(url)
    assert reply.status_code == 200
    assert reply.content == data
    with pytest.raises(ValueError):
        storage.presign("share/r.txt", 8 * 24 * 3600)


def test_missing_key_maps_to_storage_not_found(storage: S3Storage, tmp_path: Path) -> None:
    with pytest.raises(StorageNotFound):
        storage.get_file("nope", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(StorageNotFound):
        storage.size("nope")
    with pytest.raises(StorageNotFound):
        storage.iter_range("nope")  # raised on the call, before any byte is iterated
    with pytest.raises(StorageNotFound):
        storage.move("nope", "dst")
    assert not storage.exists("nope")


def test_backend_errors_are_storage_errors_without_secrets(s3_server: S3Server) -> None:
    settings = Settings(storage_url="s3://no-such-bucket-veil/x", **_s3_fields(s3_server))
    storage = S3Storage.from_settings(settings)
    with pytest.raises(StorageError) as info:
        storage.put_stream("k", [b"data"])
    assert not isinstance(info.value, StorageNotFound)
    assert "NoSuchBucket" in info.value.message
    assert s3_server.secret_access_key not in str(info.value)
    assert isinstance(info.value.__cause__, Exception)
    with pytest.raises(StorageError) as info:
        list(storage.iter_range("k"))
    assert s3_server.secret_access_key not in str(info.value)


def test_unreachable_endpoint_is_a_storage_error(s3_bucket: str) -> None:
    settings = Settings(
        storage_url=f"s3://{s3_bucket}",
        s3_endpoint_url="http://127.0.0.1:9",  # discard port: connection refused
        s3_access_key_id="k",
        s3_secret_access_key="hunter2-secret",
    )
    storage = S3Storage.from_settings(settings)
    with pytest.raises(StorageError) as info:
        storage.size("k")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("url", [None, "file:///tmp/blobs", "s3://", "s3:///prefix"])
def test_from_settings_rejects_non_s3_urls(url: str | None) -> None:
    with pytest.raises(StorageError):
        S3Storage.from_settings(Settings(storage_url=url))
