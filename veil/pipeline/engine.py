"""``Engine``: loaded detectors, reused across jobs and shared between worker threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from veil.detect.base import Detector
from veil.detect.models import ModelStore
from veil.detect.registry import Overrides, build_detector, default_threshold, model_sha256
from veil.detect.runtime import RuntimeOptions
from veil.report import ModelInfo
from veil.settings import Settings

__all__ = ["Engine"]


class Engine:
    """Loaded detectors, reused across jobs and shared between worker threads.

    Building an onnxruntime session and warming it up takes longer than
    redacting a photo, so detectors are cached by everything that shapes them.
    """

    def __init__(self, *, model_dir: Path, runtime: RuntimeOptions) -> None:
        self.store = ModelStore(model_dir)
        self.runtime = runtime
        self._cache: dict[
            tuple[str, float | None, str, float, Overrides], tuple[Detector, threading.Lock]
        ] = {}
        self._model_info: dict[str, ModelInfo] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Engine:
        return cls(model_dir=settings.model_dir, runtime=RuntimeOptions.from_settings(settings))

    @contextmanager
    def detector(
        self,
        category: str,
        *,
        threshold: float | None,
        mode: str,
        detect_scale: float,
        overrides: Overrides = (),
    ) -> Iterator[Detector]:
        """A warmed-up detector for ``category``, held exclusively for the ``with`` block."""
        key = (category, threshold, mode, detect_scale, overrides)
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                detector = build_detector(
                    category,
                    store=self.store,
                    runtime=self.runtime,
                    threshold=threshold,
                    mode=mode,  # type: ignore[arg-type]
                    detect_scale=detect_scale,
                    overrides=overrides,
                )
                entry = self._cache[key] = (detector, threading.Lock())
        detector, lock = entry
        with lock:
            yield detector

    def default_threshold(self, category: str) -> float | None:
        """The tuned score threshold of ``category``'s video detector (``Plan.build`` asks once per run)."""
        return default_threshold(category, store=self.store, runtime=self.runtime)

    def model_info(self, category: str) -> ModelInfo:
        """Name and sha256 of the model behind ``category``, for reports. Hashing a model file takes
        longer than masking a photo, so it is done once per category and process."""
        with self._lock:
            info = self._model_info.get(category)
        if info is None:
            with self.detector(category, threshold=None, mode="image", detect_scale=1.0) as det:
                name = det.model_name
            sha256 = model_sha256(category, store=self.store, runtime=self.runtime)
            info = ModelInfo(name=name, category=category, sha256=sha256)
            with self._lock:
                self._model_info[category] = info
        return info
