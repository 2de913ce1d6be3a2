"""A real, small filesystem that tests can fill: a tmpfs mounted for one test.

Full-disk behaviour (SQLite's "database or disk is full", ENOSPC from the blob store and the
scratch directory) is tested on a real full disk, not a mocked error. Mounting needs root (CI and
this sandbox run as root); elsewhere the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


class SmallDisk:
    """A tmpfs at ``root``: ``fill()`` writes a filler file until ENOSPC, ``free()`` removes it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._filler = root / "filler"

    def fill(self) -> None:
        """Write until ENOSPC, unbuffered (a buffered file would raise again when it is closed)."""
        for block_size in (64 << 10, 1024, 1):
            with self._filler.open("ab", buffering=0) as fh:
                block = b"\0" * block_size
                while True:
                    try:
                        fh.write(block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)


@contextlib.contextmanager
def small_disk(root: Path, *, size_mb: int = 16) -> Iterator[SmallDisk]:
    """Mount a ``size_mb`` tmpfs at ``root`` for the block; raises ``PermissionError`` without root."""
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        raise PermissionError("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(root)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise PermissionError(f"mount failed: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True, check=False)
