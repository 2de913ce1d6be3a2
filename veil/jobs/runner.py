"""What a worker runs for a job: ``JobRunner``, and ``PipelineRunner``, which calls ``veil.pipeline``.

The protocol is the seam between the job machinery (claim, heartbeat, storage,
retries) and the engine. ``PipelineRunner`` loads the engine once, lazily, and
shares it between worker threads, as the pipeline contract allows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from veil.report import Report
from veil.settings import Settings
from veil.spec import DEFAULT_CATEGORIES, RedactionSpec

if TYPE_CHECKING:  # the engine pulls in onnxruntime and PyAV: load them only when a job runs
    from veil.pipeline import Engine, MediaInfo

__all__ = ["JobRunner", "PipelineRunner"]


class JobRunner(Protocol):
    def available_categories(self) -> list[str]:
        """Categories this runner can detect; the API refuses specs that enable others (422)."""
        ...

    def output_suffix(self, spec: RedactionSpec, info: MediaInfo) -> str:
        """The suffix of the file ``run`` writes; ``SpecError`` when the spec does not fit the input."""
        ...

    def probe(self, path: Path, *, settings: Settings) -> MediaInfo:
        """What the input is, checked against the admission limits (``MediaError`` subclasses)."""
        ...

    def run(
        self,
        spec: RedactionSpec,
        input_path: Path,
        output_path: Path | None,
        *,
        info: MediaInfo,
        progress: Callable[[float], None],
        cancel: Callable[[], bool],
        source_report: Report | None,
        thumbnails_dir: Path | None,
    ) -> Report: ...


class PipelineRunner:
    """``JobRunner`` over ``veil.pipeline``; the engine (models) is loaded on first use or ``warm_up``."""

    def __init__(self, settings: Settings, *, engine: Engine | None = None) -> None:
        self._settings = settings
        self._engine = engine
        self._lock = threading.Lock()

    def _get_engine(self) -> Engine:
        from veil.pipeline import Engine

        with self._lock:
            if self._engine is None:
                self._engine = Engine.from_settings(self._settings)
            return self._engine

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def warm_up(self) -> None:
        """Load the default detectors now, so the first job does not pay for it. Raises ``ModelMissing``."""
        engine = self._get_engine()
        available = set(self.available_categories())
        for category in DEFAULT_CATEGORIES:
            if category in available:
                engine.model_info(category)

    def available_categories(self) -> list[str]:
        from veil.pipeline import available_categories

        return list(available_categories())

    def output_suffix(self, spec: RedactionSpec, info: MediaInfo) -> str:
        """The suffix of the output; ``SpecError`` when the spec asks of it what the input cannot give."""
        from veil.pipeline import check_output

        return check_output(spec, info)

    def probe(self, path: Path, *, settings: Settings) -> MediaInfo:
        from veil.pipeline import probe

        return probe(path, **settings.probe_limits())

    def run(
        self,
        spec: RedactionSpec,
        input_path: Path,
        output_path: Path | None,
        *,
        info: MediaInfo,
        progress: Callable[[float], None],
        cancel: Callable[[], bool],
        source_report: Report | None,
        thumbnails_dir: Path | None,
    ) -> Report:
        from veil.pipeline import run

        return run(
            self._get_engine(),
            spec,
            input_path,
            output_path,
            progress=progress,
            cancel=cancel,
            source_report=source_report,
            thumbnails_dir=thumbnails_dir,
            file_label=None,
            info=info,
        )
