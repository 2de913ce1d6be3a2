"""How many cores a test process's models may take.

``make pytest`` runs several test processes at once (pytest-xdist), which already keep every core busy:
there each process runs its onnxruntime sessions on one thread. More threads bought no speed there and
cost CPU (the plate detector over the fisheye clip: 7.6 s of CPU on one thread, 8.8-9.0 s on two), and
the suite is CPU-bound. A test process running alone lets onnxruntime take every core, as ``veil`` does.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from veil.detect.runtime import RuntimeOptions

__all__ = ["ORT_THREADS", "XDIST", "ort_runtime"]

XDIST = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1
"""This process is one of several pytest-xdist workers sharing the cores."""

ORT_THREADS = 1 if XDIST else 0
"""``intra_op_threads`` for the detectors a test builds itself (0: onnxruntime's default, every core)."""


def ort_runtime(*, int8: bool = False) -> RuntimeOptions:
    """The onnxruntime options of a detector a test builds itself: ``ORT_THREADS`` threads."""
    from veil.detect.runtime import RuntimeOptions  # onnxruntime loads only for the tests that need it

    return RuntimeOptions(intra_op_threads=ORT_THREADS, int8=int8)
