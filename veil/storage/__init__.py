"""Blob storage behind one ``Storage`` protocol: a local directory (default),
an S3-compatible bucket, or memory. ``create_storage(settings)`` picks one."""

from veil.storage.base import Storage
from veil.storage.factory import create_storage
from veil.storage.keys import check_key
from veil.storage.local import LocalStorage
from veil.storage.memory import MemoryStorage

__all__ = ["LocalStorage", "MemoryStorage", "Storage", "check_key", "create_storage"]
