"""What only ``LocalStorage`` does: no part files left behind, empty folders pruned, files read in place,
and OS errors without paths. The behaviour every backend shares is in ``test_contract.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.storage import LocalStorage


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "blobs")


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
