"""Behaviour every ``Storage`` backend must show, run once against each: ``local`` (a folder), ``memory``
and ``s3`` (a real S3 HTTP server, moto), each built by ``create_storage`` from the settings an operator
would set. The backends stay interchangeable; what only one backend does is tested in its own module."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from veil.errors import StorageNotFound
from veil.settings import Settings
from veil.storage import LocalStorage, MemoryStorage, Storage, create_storage
from veil.storage.s3 import S3Storage

if TYPE_CHECKING:
    from tests.s3server import S3Server

pytest_plugins = ["tests.s3server"]

BACKENDS = {"local": LocalStorage, "memory": MemoryStorage, "s3": S3Storage}


@pytest.fixture(params=sorted(BACKENDS))
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """A fresh, empty store of each kind; S3 gets a new bucket on the session's moto server."""
    if request.param == "local":
        settings = Settings(data_dir=tmp_path / "data")
    elif request.param == "memory":
        settings = Settings(data_dir=tmp_path / "data", storage_url="memory://")
    else:
        s3: S3Server = request.getfixturevalue("s3_server")
        settings = Settings(
            data_dir=tmp_path / "data",
            s3_endpoint_url=s3.endpoint_url,
            s3_region=s3.region,
            s3_access_key_id=s3.access_key_id,
            s3_secret_access_key=s3.secret_access_key,
            storage_url=f"s3://{request.getfixturevalue('s3_bucket')}/veil/blobs",
        )
    made = create_storage(settings)
    assert type(made) is BACKENDS[request.param]
    return made


def test_is_a_storage(storage: Storage) -> None:
    assert isinstance(storage, Storage)


def test_roundtrip_stream_and_file(storage: Storage, tmp_path: Path) -> None:
    chunks = [bytes([i]) * 70_000 for i in range(5)]
    assert storage.put_stream("jobs/a/input.mp4", iter(chunks)) == 350_000
    assert storage.exists("jobs/a/input.mp4")
    assert storage.size("jobs/a/input.mp4") == 350_000
    out = tmp_path / "copy.bin"
    storage.get_file("jobs/a/input.mp4", out)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(b"".join(chunks)).digest()

    src = tmp_path / "src.bin"
    src.write_bytes(b"hello world")
    storage.put_file("jobs/a/report.json", src)
    assert b"".join(storage.iter_range("jobs/a/report.json")) == b"hello world"


def test_an_empty_stream_is_an_empty_blob(storage: Storage) -> None:
    assert storage.put_stream("empty", iter([])) == 0
    assert storage.exists("empty") and storage.size("empty") == 0


def test_put_replaces_what_was_there(storage: Storage) -> None:
    storage.put_stream("k/v", [b"first version"])
    storage.put_stream("k/v", [b"second"])
    assert b"".join(storage.iter_range("k/v")) == b"second" and storage.size("k/v") == 6


def test_ranges(storage: Storage) -> None:
    data = bytes(range(256)) * 40
    storage.put_stream("k/blob", [data])
    assert b"".join(storage.iter_range("k/blob", 0, 9)) == data[:10]
    assert b"".join(storage.iter_range("k/blob", 100, None, chunk_size=7)) == data[100:]
    assert b"".join(storage.iter_range("k/blob", 5000, 10239, chunk_size=1000)) == data[5000:]
    assert b"".join(storage.iter_range("k/blob", len(data) - 1, len(data) - 1)) == data[-1:]
    assert all(len(c) <= 7 for c in storage.iter_range("k/blob", 0, 99, chunk_size=7))


def test_missing_keys(storage: Storage, tmp_path: Path) -> None:
    assert not storage.exists("nope/x")
    with pytest.raises(StorageNotFound):
        storage.get_file("nope/x", tmp_path / "x")
    assert not (tmp_path / "x").exists(), "no empty file is left where the download would go"
    with pytest.raises(StorageNotFound):
        storage.size("nope/x")
    with pytest.raises(StorageNotFound):
        b"".join(storage.iter_range("nope/x"))
    with pytest.raises(StorageNotFound):
        storage.move("nope/x", "nope/y")
    storage.delete("nope/x")  # missing is not an error
    assert storage.delete_prefix("nope/") == 0


def test_move_and_delete(storage: Storage) -> None:
    storage.put_stream("jobs/b/tmp/output-1.jpg", [b"result"])
    storage.move("jobs/b/tmp/output-1.jpg", "jobs/b/output.jpg")
    assert not storage.exists("jobs/b/tmp/output-1.jpg")
    assert b"".join(storage.iter_range("jobs/b/output.jpg")) == b"result"
    storage.put_stream("jobs/b/thumbs/1.jpg", [b"t"])
    storage.put_stream("jobs/bb/input", [b"other job"])
    assert storage.delete_prefix("jobs/b/") == 2
    assert not storage.exists("jobs/b/output.jpg")
    assert storage.exists("jobs/bb/input"), "a prefix ending in / must not reach a sibling folder"
    storage.delete("jobs/bb/input")
    assert not storage.exists("jobs/bb/input")


def test_a_failed_stream_leaves_no_blob(storage: Storage) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"half"
        raise OSError("client went away")

    with pytest.raises(OSError, match="client went away"):
        storage.put_stream("jobs/c/input", chunks())
    assert not storage.exists("jobs/c/input")


@pytest.mark.parametrize(
    "key", ["../escape", "/abs", "a//b", "a/../b", "./a", ".hidden", "", "a/", "a/b/", "sp ace"]
)
def test_unsafe_keys_are_refused(storage: Storage, key: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        storage.put_stream(key, [b"x"])
    assert not (tmp_path / "escape").exists()
