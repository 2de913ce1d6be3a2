"""Files and folders only the service's user can read: unredacted inputs, the job database and
scratch files are personal data, so Veil creates them 0600 and folders 0700 whatever the umask.

``NO_SPACE_ERRNOS`` names the ``OSError`` numbers that mean the disk (or quota) is full, so every
boundary maps them to ``veil.errors.StorageFull`` the same way.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import BinaryIO

__all__ = ["NO_SPACE_ERRNOS", "make_private_dirs", "open_private"]

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def make_private_dirs(folder: Path) -> Path:
    """``mkdir -p`` where every folder it creates is 0700 (``Path.mkdir(parents=True)`` gives missing
    parents the umask's mode). Existing folders are left as they are. Returns ``folder``."""
    for path in reversed([folder, *folder.parents]):
        if not path.is_dir():
            path.mkdir(mode=0o700, exist_ok=True)
    return folder


def open_private(path: Path, *, exclusive: bool = False) -> BinaryIO:
    """Create (or truncate) ``path`` for binary writing, mode 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    return os.fdopen(fd, "wb")
