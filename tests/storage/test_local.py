from __future__ import annotations

from pathlib import Path

import pytest

from tests.storage import contract
from veil.storage import LocalStorage, Storage


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "blobs")


def test_is_a_storage(storage: LocalStorage) -> None:
    assert isinstance(storage, Storage)


def test_roundtrip(storage: LocalStorage, tmp_path: Path) -> None:
    contract.roundtrip_stream_and_file(storage, tmp_path)


def test_ranges(storage: LocalStorage) -> None:
    contract.ranges(storage)


def test_missing_keys(storage: LocalStorage, tmp_path: Path) -> None:
    contract.missing_keys(storage, tmp_path)


def test_move_and_delete(storage: LocalStorage) -> None:
    contract.move_and_delete(storage)


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/../b", ".hidden", "", "a/b/", "sp ace"])
def test_unsafe_keys_are_refused(storage: LocalStorage, key: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        storage.put_stream(key, [b"x"])
    assert not (tmp_path / "escape").exists()


def test_failed_stream_leaves_no_blob_and_no_part_file(storage: LocalStorage) -> None:
    def chunks():
        yield b"half"
        raise OSError("client went away")

    with pytest.raises(OSError):
        storage.put_stream("jobs/c/input", chunks())
    assert not storage.exists("jobs/c/input")
    assert [p for p in storage.root.rglob("*") if p.is_file()] == []


def test_delete_prefix_prunes_empty_folders(storage: LocalStorage) -> None:
    storage.put_stream("jobs/d/thumbs/1.jpg", [b"x"])
    storage.put_stream("jobs/d/output.mp4", [b"x"])
    assert storage.delete_prefix("jobs/d/") == 2
    assert not (storage.root / "jobs" / "d").exists()


def test_local_path_reads_in_place(storage: LocalStorage) -> None:
    storage.put_stream("jobs/e/input.jpg", [b"abc"])
    path = storage.local_path("jobs/e/input.jpg")
    assert path is not None and path.read_bytes() == b"abc"
    assert storage.presign("jobs/e/input.jpg", 60) is None


def test_os_errors_become_storage_errors_without_paths(storage: LocalStorage) -> None:
    from veil.errors import StorageError

    storage.put_stream("jobs/f/input", [b"x"])
    with pytest.raises(StorageError) as info:
        storage.put_stream("jobs/f/input/child", [b"y"])  # a file stands where a folder must go
    assert str(storage.root) not in str(info.value), "paths stay out of error messages"
