"""Build the configured ``Storage`` from ``Settings``: the one place that reads ``VEIL_STORAGE_URL``.

=====================  =========================================
``VEIL_STORAGE_URL``   backend
=====================  =========================================
unset                  ``LocalStorage(VEIL_DATA_DIR/blobs)``
``file:///abs/dir``    ``LocalStorage(/abs/dir)``
``memory://``          ``MemoryStorage()`` (tests, throwaway runs)
``s3://bucket/prefix`` ``S3Storage.from_settings`` (imported lazily, so boto3 loads only when used)
=====================  =========================================
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from veil.errors import StorageError
from veil.settings import Settings
from veil.storage.base import Storage
from veil.storage.local import LocalStorage
from veil.storage.memory import MemoryStorage

__all__ = ["create_storage"]


def create_storage(settings: Settings, *, storage: Storage | None = None) -> Storage:
    """The ``Storage`` for ``settings``, or ``storage`` itself when one is injected."""
    if storage is not None:
        return storage
    url = settings.storage_url
    if not url:
        return LocalStorage(settings.data_dir / "blobs")
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StorageError("VEIL_STORAGE_URL file:// URLs must name a local absolute path (file:///dir)")
        return LocalStorage(Path(unquote(parts.path)))
    if parts.scheme == "memory":
        return MemoryStorage()
    if parts.scheme == "s3":
        from veil.storage.s3 import S3Storage

        return S3Storage.from_settings(settings)
    raise StorageError("VEIL_STORAGE_URL must start with file://, s3:// or memory://")
