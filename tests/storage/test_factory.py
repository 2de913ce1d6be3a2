from __future__ import annotations

from pathlib import Path

import pytest

from veil.errors import StorageError
from veil.settings import Settings
from veil.storage import LocalStorage, MemoryStorage, create_storage


def test_default_is_the_blobs_folder_of_the_data_dir(tmp_path: Path) -> None:
    storage = create_storage(Settings(data_dir=tmp_path))
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "blobs"


def test_file_url(tmp_path: Path) -> None:
    storage = create_storage(Settings(data_dir=tmp_path, storage_url=f"file://{tmp_path}/elsewhere"))
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path / "elsewhere"


def test_memory_url(tmp_path: Path) -> None:
    assert isinstance(create_storage(Settings(data_dir=tmp_path, storage_url="memory://")), MemoryStorage)


def test_injected_instance_wins(tmp_path: Path) -> None:
    injected = MemoryStorage()
    assert create_storage(Settings(data_dir=tmp_path, storage_url="s3://b/p"), storage=injected) is injected


@pytest.mark.parametrize("url", ["ftp://host/x", "file://remotehost/x", "gs://bucket"])
def test_unknown_urls_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(StorageError):
        create_storage(Settings(data_dir=tmp_path, storage_url=url))
