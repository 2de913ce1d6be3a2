"""Decoding ahead of detection, in a thread of its own.

Why: while onnxruntime detects, its threads leave part of the cores idle (two threads run CenterFace
1.5x, not 2x, faster than one), and between detections the analyse loop decodes frames, shrinks them
and estimates the camera's motion on one core while the other waits. A reader thread that does that
work a few frames ahead fills those gaps; OpenCV and PyAV release the GIL while they work.

The stage keeps its order and its results: ``prepare`` sees every item once, in order, on the reader
thread, and the consumer gets each item with what ``prepare`` made of it, in the same order. An error
raised while reading is raised to the consumer at the item where it happened.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["READ_AHEAD_DEPTH", "read_ahead"]

T = TypeVar("T")
U = TypeVar("U")

READ_AHEAD_DEPTH = 8
"""Items read ahead at most: enough to ride over one detection, few enough that eight decoded 4K frames
(12 MB each) stay a small share of a worker's memory."""

_POLL_S = 0.1
"""How often a blocked reader looks whether the consumer has stopped."""


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Done:
    pass


class _Reader(threading.Thread, Generic[T, U]):
    def __init__(self, items: Iterable[T], prepare: Callable[[T], U], depth: int) -> None:
        super().__init__(name="veil-read-ahead", daemon=True)
        self.items = items
        self.prepare = prepare
        self.out: queue.Queue[tuple[T, U] | _Failed | _Done] = queue.Queue(maxsize=depth)
        self.stopped = threading.Event()

    def run(self) -> None:
        iterator: Iterator[T] | None = None
        try:
            iterator = iter(self.items)
            for item in iterator:
                if not self._put((item, self.prepare(item))):
                    return
            self._put(_Done())
        except BaseException as exc:  # handed to the consumer, who raises it
            self._put(_Failed(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # a generator's own clean-up (closing the container) runs on this thread

    def _put(self, entry: tuple[T, U] | _Failed | _Done) -> bool:
        """Queue ``entry``, waiting for room; False once the consumer has stopped."""
        while not self.stopped.is_set():
            try:
                self.out.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False


def read_ahead(
    items: Iterable[T], prepare: Callable[[T], U], *, depth: int = READ_AHEAD_DEPTH
) -> Generator[tuple[T, U], None, None]:
    """Each item of ``items`` with ``prepare(item)``, both made on a reader thread up to ``depth`` items
    ahead of the consumer. Stopping early (``break``, an exception, ``close()``) stops the reader too."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    reader: _Reader[T, U] = _Reader(items, prepare, depth)
    reader.start()
    try:
        while True:
            entry = reader.out.get()
            if isinstance(entry, _Done):
                return
            if isinstance(entry, _Failed):
                raise entry.exc
            yield entry
    finally:
        reader.stopped.set()
        reader.join()
