"""The blob storage interface. Local directory (default), S3-compatible, or
in-memory (tests) implement it; ``veil.storage.factory`` picks one from
``Settings``. Keys are ``/``-separated relative paths chosen by Veil, never
user file names."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["Storage"]


@runtime_checkable
class Storage(Protocol):
    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        """Write ``chunks`` to ``key`` without holding them whole; return the byte count."""
        ...

    def put_file(self, key: str, path: Path) -> None:
        """Upload a local file (multipart where the backend has it)."""
        ...

    def get_file(self, key: str, path: Path) -> None:
        """Download ``key`` into ``path``. Raises ``StorageNotFound``."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A path that can be read directly, if the backend is local; else ``None``."""
        ...

    def iter_range(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        """Bytes ``start``..``end`` inclusive (``end=None`` means to the end)."""
        ...

    def size(self, key: str) -> int:
        """Size in bytes. Raises ``StorageNotFound``."""
        ...

    def exists(self, key: str) -> bool: ...

    def move(self, src: str, dst: str) -> None:
        """Promote a temporary key to its final name (atomic where the backend allows)."""
        ...

    def delete(self, key: str) -> None:
        """Delete one key; a missing key is not an error."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix``; return how many."""
        ...

    def presign(self, key: str, expires_s: int) -> str | None:
        """A URL that downloads ``key`` without credentials, or ``None`` if the backend has none."""
        ...
