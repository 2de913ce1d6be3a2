from __future__ import annotations

from pathlib import Path

import pytest

from tests.storage import contract
from veil.storage import MemoryStorage, Storage


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


def test_is_a_storage(storage: MemoryStorage) -> None:
    assert isinstance(storage, Storage)


def test_roundtrip(storage: MemoryStorage, tmp_path: Path) -> None:
    contract.roundtrip_stream_and_file(storage, tmp_path)


def test_ranges(storage: MemoryStorage) -> None:
    contract.ranges(storage)


def test_missing_keys(storage: MemoryStorage, tmp_path: Path) -> None:
    contract.missing_keys(storage, tmp_path)


def test_move_and_delete(storage: MemoryStorage) -> None:
    contract.move_and_delete(storage)
    assert storage.keys() == []


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", ".hidden", ""])
def test_unsafe_keys_are_refused(storage: MemoryStorage, key: str) -> None:
    with pytest.raises(ValueError):
        storage.put_stream(key, [b"x"])
