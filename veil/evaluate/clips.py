"""Run Veil's video analysis over a folder of labelled clips and score what it would mask.

Each clip ``NAME.mp4`` (any video suffix) is scored against ``NAME.gt.txt`` beside
it (MOTChallenge, see ``veil.evaluate.video``). The analysis is the pipeline's
own (``veil.pipeline.analyse``: detection schedule, tracking, gap filling, padding,
smoothing); each frame's boxes are then turned into the pixels the spec's
redactors hide (mask_scale growth, ellipse or rectangle, feathering), and those
are scored. Only the labels of enabled categories are scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veil.detections import Detections
from veil.errors import SpecError
from veil.evaluate.shots import save_leak_shots
from veil.evaluate.video import ClipScorer, ScoreRule, VideoScore, load_mot_labels
from veil.media import probe
from veil.media.formats import VIDEO_SUFFIXES
from veil.pipeline import Engine, Plan, analyse
from veil.redact import Redactor
from veil.redact.coverage import hidden_mask
from veil.spec import RedactionSpec
from veil.track import tracks_at_frames

__all__ = ["LABEL_SUFFIX", "LabelledClip", "VideoEvalResult", "evaluate_clips", "find_labelled_clips"]

LABEL_SUFFIX = ".gt.txt"
Painted = dict[str, npt.NDArray[np.bool_]]
"""Per category, what its masks hide in one frame."""


@dataclass(frozen=True)
class LabelledClip:
    video: Path
    labels: Path

    @property
    def name(self) -> str:
        return self.video.stem


@dataclass
class VideoEvalResult:
    """Totals over the clips, each clip's own score, and the analysis time."""

    total: VideoScore
    clips: dict[str, VideoScore] = field(default_factory=dict)
    seconds: float = 0.0
    """Wall time of the analysis (decode, detect, track, finalize), summed over clips; scoring excluded."""
    unlabelled: list[str] = field(default_factory=list)
    """Videos in the folder without a ``.gt.txt`` beside them (not scored)."""
    shots: list[Path] = field(default_factory=list)
    """Pictures of the leaks, when asked for (``leak_shots``)."""

    @property
    def fps(self) -> float:
        return self.total.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            **self.total.to_dict(),
            "seconds": round(self.seconds, 2),
            "fps": round(self.fps, 2),
            "unlabelled": self.unlabelled,
            **({"leak_shots": [str(p) for p in self.shots]} if self.shots else {}),
            "per_clip": {name: score.to_dict() for name, score in self.clips.items()},
        }


def find_labelled_clips(directory: Path) -> tuple[list[LabelledClip], list[str]]:
    """Videos of ``directory`` (not recursive) with a ``NAME.gt.txt`` beside them, sorted, and the
    names of videos without one. Raises SpecError when the folder is missing or holds no labelled clip."""
    if not directory.is_dir():
        raise SpecError(f"video folder {directory} does not exist or is not a folder")
    clips: list[LabelledClip] = []
    unlabelled: list[str] = []
    for video in sorted(
        p for p in directory.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
    ):
        labels = video.with_name(video.stem + LABEL_SUFFIX)
        if labels.is_file():
            clips.append(LabelledClip(video, labels))
        else:
            unlabelled.append(video.name)
    if not clips:
        raise SpecError(
            f"no labelled clips in {directory}: expected NAME.mp4 with NAME{LABEL_SUFFIX} beside it"
        )
    return clips, unlabelled


def evaluate_clips(
    engine: Engine,
    spec: RedactionSpec,
    directory: Path,
    *,
    rule: ScoreRule | None = None,
    on_clip: Callable[[str, VideoScore], None] | None = None,
    leak_shots: Path | None = None,
) -> VideoEvalResult:
    """Analyse every labelled clip of ``directory`` with ``spec`` and score the pixels its masks hide.
    With ``leak_shots``, a picture of every leaked object is saved there (``veil.evaluate.shots``)."""
    clips, unlabelled = find_labelled_clips(directory)
    categories = spec.enabled_categories()
    plan = Plan.build(spec, engine=engine)
    redactors = plan.redactors  # the masks a render of this spec paints, margins and all
    result = VideoEvalResult(total=VideoScore(), unlabelled=unlabelled)
    for clip in clips:
        labels = load_mot_labels(clip.labels)
        keep = np.array([c in categories for c in labels.category], dtype=bool)
        labels = type(labels)(
            frame=labels.frame[keep],
            object_id=labels.object_id[keep],
            xyxy=labels.xyxy[keep],
            category=tuple(c for c, k in zip(labels.category, keep.tolist(), strict=True) if k),
            visibility=labels.visibility[keep],
        )
        info = probe(clip.video)
        if info.kind != "video":
            raise SpecError(f"{clip.video.name} is not a video")
        resolution_wh = (info.width, info.height)
        started = time.perf_counter()
        tracks, frame_count = analyse(engine, plan, [clip.video], info=info)
        result.seconds += time.perf_counter() - started
        scorer = ClipScorer(labels, resolution_wh=resolution_wh, rule=rule)
        paint = partial(
            _painted_at, tracks_at_frames(tracks, frame_count), categories, redactors, resolution_wh
        )
        for index in range(frame_count):
            painted = paint(index)
            scorer.add_frame(index, _union(painted, resolution_wh=resolution_wh), painted=painted)
        score = scorer.result()
        result.clips[clip.name] = score
        result.total.add(score)
        if leak_shots is not None:
            result.shots += save_leak_shots(
                clip.video,
                clip.name,
                score.leaks,
                labels,
                hidden_at=partial(_hidden_at, paint, resolution_wh),
                directory=leak_shots,
                core_fraction=(rule or ScoreRule()).core_fraction,
            )
        if on_clip is not None:
            on_clip(clip.name, score)
    return result


def _painted_at(
    per_frame: Sequence[Detections],
    categories: Sequence[str],
    redactors: Sequence[Redactor],
    resolution_wh: tuple[int, int],
    index: int,
) -> Painted:
    """What each category's masks hide in frame ``index``."""
    dets = per_frame[index]
    return {
        category: hidden_mask(redactor, dets[dets.class_id == class_id], resolution_wh=resolution_wh)
        for class_id, (category, redactor) in enumerate(zip(categories, redactors, strict=True))
    }


def _hidden_at(
    paint: Callable[[int], Painted], resolution_wh: tuple[int, int], index: int
) -> npt.NDArray[np.bool_]:
    return _union(paint(index), resolution_wh=resolution_wh)


def _union(painted: Painted, *, resolution_wh: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """Everything hidden in a frame, whoever painted it."""
    hidden = np.zeros((resolution_wh[1], resolution_wh[0]), dtype=bool)
    for mask in painted.values():
        hidden |= mask
    return hidden
