"""Behaviour every ``Storage`` backend must show. Each backend's test module runs these
against a real instance, so the backends stay interchangeable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from veil.errors import StorageNotFound
from veil.storage import Storage


def roundtrip_stream_and_file(storage: Storage, tmp_path: Path) -> None:
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


def ranges(storage: Storage) -> None:
    data = bytes(range(256)) * 40
    storage.put_stream("k/blob", [data])
    assert b"".join(storage.iter_range("k/blob", 0, 9)) == data[:10]
    assert b"".join(storage.iter_range("k/blob", 100, None, chunk_size=7)) == data[100:]
    assert b"".join(storage.iter_range("k/blob", 5000, 10239, chunk_size=1000)) == data[5000:]
    assert b"".join(storage.iter_range("k/blob", len(data) - 1, len(data) - 1)) == data[-1:]


def missing_keys(storage: Storage, tmp_path: Path) -> None:
    assert not storage.exists("nope/x")
    with pytest.raises(StorageNotFound):
        storage.get_file("nope/x", tmp_path / "x")
    with pytest.raises(StorageNotFound):
        storage.size("nope/x")
    with pytest.raises(StorageNotFound):
        b"".join(storage.iter_range("nope/x"))
    with pytest.raises(StorageNotFound):
        storage.move("nope/x", "nope/y")
    storage.delete("nope/x")  # missing is not an error


def move_and_delete(storage: Storage) -> None:
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
