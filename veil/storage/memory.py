"""Blobs in a dict: a supported backend for unit tests and throwaway runs.

It behaves like the others (same key rules, same ``StorageNotFound``), so a
test that passes on it exercises the real calling code, only faster.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from veil.errors import StorageNotFound
from veil.storage.keys import check_key, check_prefix

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """``Storage`` held in process memory; thread-safe; gone when the process exits."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryStorage({len(self._blobs)} blobs)"

    def _get(self, key: str) -> bytes:
        with self._lock:
            try:
                return self._blobs[check_key(key)]
            except KeyError as exc:
                raise StorageNotFound(key) from exc

    def keys(self) -> list[str]:
        """Every key, sorted: lets tests check what a job left behind."""
        with self._lock:
            return sorted(self._blobs)

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        check_key(key)
        data = b"".join(chunks)
        with self._lock:
            self._blobs[key] = data
        return len(data)

    def put_file(self, key: str, path: Path) -> None:
        check_key(key)
        data = Path(path).read_bytes()
        with self._lock:
            self._blobs[key] = data

    def get_file(self, key: str, path: Path) -> None:
        data = self._get(key)
        with Path(path).open("wb") as fh:
            fh.write(data)

    def local_path(self, key: str) -> Path | None:
        return None

    def iter_range(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        if start < 0 or (end is not None and end < start - 1):
            raise ValueError("range must satisfy 0 <= start <= end + 1")
        data = self._get(key)
        stop = len(data) if end is None else min(end + 1, len(data))
        return (data[i : min(i + chunk_size, stop)] for i in range(start, stop, chunk_size))

    def size(self, key: str) -> int:
        return len(self._get(key))

    def exists(self, key: str) -> bool:
        with self._lock:
            return check_key(key) in self._blobs

    def move(self, src: str, dst: str) -> None:
        check_key(dst)
        with self._lock:
            try:
                self._blobs[dst] = self._blobs.pop(check_key(src))
            except KeyError as exc:
                raise StorageNotFound(src) from exc

    def delete(self, key: str) -> None:
        with self._lock:
            self._blobs.pop(check_key(key), None)

    def delete_prefix(self, prefix: str) -> int:
        check_prefix(prefix)
        with self._lock:
            doomed = [k for k in self._blobs if k.startswith(prefix)]
            for key in doomed:
                del self._blobs[key]
        return len(doomed)

    def presign(self, key: str, expires_s: int) -> str | None:
        return None
