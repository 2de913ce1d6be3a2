"""Free space on the data disk: checked before accepting work, and by ``/readyz``.

A job that starts on a nearly full disk fails half-way (after its upload, its decode and part of
its encode), so the API refuses new work below ``VEIL_MIN_FREE_MB`` with 507 ``storage_full``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from veil.errors import StorageError, StorageFull
from veil.private_files import NO_SPACE_ERRNOS, make_private_dirs, open_private

__all__ = ["probe_writable", "require_free_space"]


def require_free_space(path: Path, *, min_free_bytes: int) -> None:
    """Raise ``StorageFull`` when the filesystem holding ``path`` has less than ``min_free_bytes`` free."""
    try:
        free = shutil.disk_usage(make_private_dirs(path)).free
    except OSError as exc:
        if exc.errno in NO_SPACE_ERRNOS:
            raise StorageFull("the data disk is full") from exc
        raise StorageError("the data disk cannot be read") from exc
    if free < min_free_bytes:
        raise StorageFull(
            f"the data disk has {free // (1 << 20)} MB free, below VEIL_MIN_FREE_MB "
            f"({min_free_bytes // (1 << 20)} MB); free space and retry"
        )


def probe_writable(folder: Path, *, size: int = 4096) -> None:
    """Write, flush and remove ``size`` bytes in ``folder``; ``StorageFull``/``StorageError`` if it fails.

    Creating an empty file can succeed on a full disk (it needs an inode, not a block), so the probe
    writes real bytes and syncs them."""
    probe = folder / f".probe-{os.getpid()}"
    try:
        make_private_dirs(folder)
        with open_private(probe) as fh:
            fh.write(b"\0" * size)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        if exc.errno in NO_SPACE_ERRNOS:
            raise StorageFull("the data disk is full") from exc
        raise StorageError("the data disk cannot be written") from exc
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
