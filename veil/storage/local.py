"""Blobs in a local directory: the embedded default (``VEIL_DATA_DIR/blobs``).

Writes go to a hidden ``.part`` file next to the target and are renamed into
place, so a reader never sees half a blob and a crash leaves only a ``.part``
file behind (never a truncated result). ``move`` is ``os.replace``: atomic on
one filesystem, which is what "write to a temporary key, then promote" needs.

OS errors are converted here: a missing file is ``StorageNotFound``, a full disk
``StorageFull``, anything else ``StorageError`` naming the operation and the errno,
never the path. Blobs are created 0600 and folders 0700: inputs are unredacted media.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from veil.errors import StorageError, StorageFull, StorageNotFound
from veil.private_files import NO_SPACE_ERRNOS, make_private_dirs, open_private
from veil.storage.keys import check_key, check_prefix

__all__ = ["LocalStorage"]


@contextlib.contextmanager
def _boundary(op: str, key: str) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError as exc:
        raise StorageNotFound(key) from exc
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        if exc.errno in NO_SPACE_ERRNOS:
            raise StorageFull(f"local storage {op} failed: no space left ({name})") from exc
        raise StorageError(f"local storage {op} failed: {name}") from exc


class LocalStorage:
    """``Storage`` over a directory. Thread-safe: every write lands through its own ``.part`` file."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        with _boundary("init", "."):
            make_private_dirs(self.root)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _part(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        part = self._part(path)
        total = 0
        try:
            with _boundary("write", key):
                make_private_dirs(path.parent)
                fh = open_private(part)
            with fh:
                for chunk in chunks:  # errors of the source (a client went away) pass through unchanged
                    with _boundary("write", key):
                        fh.write(chunk)
                    total += len(chunk)
            with _boundary("write", key):
                os.replace(part, path)
        finally:
            with contextlib.suppress(OSError):
                part.unlink(missing_ok=True)
        return total

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        with _boundary("write", key):
            make_private_dirs(target.parent)
            part = self._part(target)
            try:
                with path.open("rb") as src, open_private(part) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                os.replace(part, target)
            finally:
                with contextlib.suppress(OSError):
                    part.unlink(missing_ok=True)

    def get_file(self, key: str, path: Path) -> None:
        with _boundary("read", key):
            shutil.copyfile(self._path(key), path)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def iter_range(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        if start < 0 or (end is not None and end < start - 1):
            raise ValueError("range must satisfy 0 <= start <= end + 1")
        path = self._path(key)
        with _boundary("read", key):
            fh = path.open("rb")
        return self._iter_file(fh, key, start, end, chunk_size)

    @staticmethod
    def _iter_file(fh: BinaryIO, key: str, start: int, end: int | None, chunk_size: int) -> Iterator[bytes]:
        """Opened eagerly by ``iter_range`` so that a missing key raises there, not on first ``next``."""
        with fh, _boundary("read", key):
            fh.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                data = fh.read(want)
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data

    def size(self, key: str) -> int:
        with _boundary("stat", key):
            return self._path(key).stat().st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def move(self, src: str, dst: str) -> None:
        source, target = self._path(src), self._path(dst)
        with _boundary("move", src):
            make_private_dirs(target.parent)
            os.replace(source, target)
            self._prune(source.parent)  # no empty ``tmp/`` folder left behind once promoted

    def delete(self, key: str) -> None:
        path = self._path(key)
        with _boundary("delete", key):
            path.unlink(missing_ok=True)
            self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        check_prefix(prefix)
        folder = prefix.rpartition("/")[0]
        base = self.root / folder if folder else self.root
        count = 0
        with _boundary("delete", prefix):
            if not base.is_dir():
                return 0
            for dirpath, _dirs, files in os.walk(base, topdown=False):
                for name in files:
                    path = Path(dirpath) / name
                    key = path.relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        path.unlink(missing_ok=True)
                        if not name.endswith(".part"):
                            count += 1
                self._prune(Path(dirpath))
        return count

    def _prune(self, folder: Path) -> None:
        """Remove empty folders up to (not including) the root, so deleted jobs leave no litter."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def presign(self, key: str, expires_s: int) -> str | None:
        return None
