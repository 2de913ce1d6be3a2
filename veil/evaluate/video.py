"""Score masks on labelled video, frame by frame: the numbers behind ``veil eval --video``.

Labels are MOTChallenge ``gt.txt`` files, one line per box per frame::

    frame,id,x,y,w,h,conf,class,visibility

``frame`` is 1-based, ``id`` names one object across its frames, ``x,y,w,h`` is
the box in pixels (it may reach outside the picture), ``conf`` is ignored,
``class`` is 1 for a face and 2 for a licence plate (``MOT_CATEGORIES``), and
``visibility`` is the share of the box inside the picture (0..1).

The rule (shared/data/SOURCES.md): a box **counts** in a frame when its
visibility is at least 0.5 and its shorter side at least 12 px; a counted box is
**masked** when every pixel of its core (the central half of the box in width
and in height, clipped to the picture) is hidden. What is hidden is a boolean
image per frame, from the mask geometry (``veil.redact.coverage``) or from the
pixels of a tool's output (``solid_fill_hidden``), so one rule scores every tool.

This module is pure: NumPy in, dataclasses out, no media or models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veil.errors import SpecError

__all__ = [
    "MOT_CATEGORIES",
    "CategoryScore",
    "ClipScorer",
    "MaskShare",
    "MotLabels",
    "ObjectLeak",
    "ScoreRule",
    "VideoScore",
    "core_covered",
    "core_hidden_share",
    "core_pixels",
    "load_mot_labels",
    "solid_fill_hidden",
]

MOT_CATEGORIES: dict[int, str] = {1: "face", 2: "license_plate"}
"""MOT ``class`` column → Veil category."""

BoolImage = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class MotLabels:
    """Every labelled box of one clip, sorted by frame. ``frame`` is 0-based here."""

    frame: IntArray
    object_id: IntArray
    xyxy: FloatArray
    category: tuple[str, ...]
    visibility: FloatArray

    def __post_init__(self) -> None:
        n = self.frame.shape[0]
        if self.xyxy.shape != (n, 4) or self.object_id.shape != (n,) or self.visibility.shape != (n,):
            raise ValueError(f"label arrays must all have {n} rows")
        if len(self.category) != n:
            raise ValueError(f"category must have {n} entries, got {len(self.category)}")

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    @property
    def last_frame(self) -> int:
        return int(self.frame.max()) if len(self) else -1

    def rows_at(self, frame: int) -> slice:
        lo, hi = np.searchsorted(self.frame, [frame, frame + 1])
        return slice(int(lo), int(hi))


def load_mot_labels(path: Path) -> MotLabels:
    """Parse a MOTChallenge ``gt.txt`` (see module docstring). Raises SpecError, naming the line,
    for a malformed line or a class other than 1 (face) or 2 (licence plate)."""
    frames: list[int] = []
    ids: list[int] = []
    boxes: list[list[float]] = []
    categories: list[str] = []
    visibility: list[float] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"label file {path.name} is not UTF-8 text") from exc
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        try:
            if len(fields) < 9:
                raise ValueError("too few fields")
            frame, object_id, cls = int(fields[0]), int(fields[1]), int(float(fields[7]))
            x, y, w, h, vis = (float(v) for v in (*fields[2:6], fields[8]))
        except ValueError as exc:
            raise SpecError(
                f"label file {path.name} line {number} is not `frame,id,x,y,w,h,conf,class,visibility`"
            ) from exc
        if frame < 1 or w < 0 or h < 0 or not all(np.isfinite([x, y, w, h, vis])):
            raise SpecError(f"label file {path.name} line {number}: frame must be >= 1 and w, h >= 0")
        if cls not in MOT_CATEGORIES:
            known = ", ".join(f"{k} ({v})" for k, v in MOT_CATEGORIES.items())
            raise SpecError(f"label file {path.name} line {number}: class {cls} is not one of {known}")
        frames.append(frame - 1)
        ids.append(object_id)
        boxes.append([x, y, x + w, y + h])
        categories.append(MOT_CATEGORIES[cls])
        visibility.append(vis)
    order = np.argsort(np.asarray(frames, dtype=np.int64), kind="stable")
    return MotLabels(
        frame=np.asarray(frames, dtype=np.int64)[order],
        object_id=np.asarray(ids, dtype=np.int64)[order],
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[order],
        category=tuple(categories[i] for i in order.tolist()),
        visibility=np.asarray(visibility, dtype=np.float32)[order],
    )


@dataclass(frozen=True)
class ScoreRule:
    """Which boxes count and what masked means (defaults: SOURCES.md's fair video score)."""

    min_visibility: float = 0.5
    min_side_px: float = 12.0
    core_fraction: float = 0.5
    """The core is the central ``core_fraction`` of the box in width and in height."""

    def counts(self, xyxy: FloatArray, visibility: FloatArray) -> npt.NDArray[np.bool_]:
        side = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
        counted: npt.NDArray[np.bool_] = (visibility >= self.min_visibility) & (side >= self.min_side_px)
        return counted


def core_pixels(xyxy: FloatArray, *, fraction: float, resolution_wh: tuple[int, int]) -> IntArray:
    """Pixel index ranges [x1, x2) x [y1, y2) of each box's core: the pixels whose centres lie in the
    central ``fraction`` of the box, clipped to the picture. A core narrower than a pixel keeps the
    pixel under its centre, so no box is scored on nothing."""
    width, height = resolution_wh
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    half = (xyxy[:, 2:] - xyxy[:, :2]) * (fraction / 2)
    lo = np.ceil(centre - half - 0.5).astype(np.int64)
    hi = np.floor(centre + half - 0.5).astype(np.int64) + 1
    nearest = np.floor(centre).astype(np.int64)
    thin = hi <= lo
    lo = np.where(thin, nearest, lo)
    hi = np.where(thin, nearest + 1, hi)
    limit = np.array([width, height], dtype=np.int64)
    return np.concatenate([np.clip(lo, 0, limit), np.clip(hi, 0, limit)], axis=1)


def core_covered(hidden: BoolImage, xyxy: FloatArray, *, core_fraction: float = 0.5) -> npt.NDArray[np.bool_]:
    """For each box, whether every pixel of its core (clipped to the picture) is hidden.
    A core wholly outside the picture is never covered."""
    unhidden, area = _core_unhidden(hidden, xyxy, core_fraction=core_fraction)
    covered: npt.NDArray[np.bool_] = (unhidden == 0) & (area > 0)
    return covered


def core_hidden_share(hidden: BoolImage, xyxy: FloatArray, *, core_fraction: float = 0.5) -> FloatArray:
    """For each box, the share of its core's pixels that are hidden (0 for a core wholly outside the
    picture). A leaked box near 1 was masked a little off; one near 0 was not masked at all."""
    unhidden, area = _core_unhidden(hidden, xyxy, core_fraction=core_fraction)
    return _shares(unhidden, area)


def _shares(unhidden: IntArray, area: IntArray) -> FloatArray:
    share = np.where(area > 0, 1.0 - unhidden / np.maximum(area, 1), 0.0)
    return share.astype(np.float32)


def _core_unhidden(hidden: BoolImage, xyxy: FloatArray, *, core_fraction: float) -> tuple[IntArray, IntArray]:
    """Per box, the core's pixels left visible and the core's area (both 0 for an empty core)."""
    height, width = hidden.shape
    if xyxy.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    core = core_pixels(xyxy.astype(np.float64), fraction=core_fraction, resolution_wh=(width, height))
    shown = np.zeros((height + 1, width + 1), dtype=np.int64)
    shown[1:, 1:] = np.cumsum(np.cumsum(~hidden, axis=0, dtype=np.int64), axis=1)
    x1, y1, x2, y2 = core.T
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    unhidden = shown[y2, x2] - shown[y1, x2] - shown[y2, x1] + shown[y1, x1]
    return np.where(area > 0, unhidden, 0), area


def solid_fill_hidden(
    source: npt.NDArray[np.uint8],
    output: npt.NDArray[np.uint8],
    *,
    black_level: int = 16,
    min_change: int = 8,
) -> BoolImage:
    """Where a tool painted a black solid fill, from its output and the source frame.

    A pixel is hidden where the output is black (every channel at most ``black_level``: x264 keeps
    the inside of a black fill within a few levels of 0) and its brightest channel dropped by more
    than ``min_change`` from the source (so a dark scene's faces, at 16-25, still show the fill).
    A pixel already black in the source cannot show a drop, so it counts as hidden when it is black
    and lies within a filled area (a morphological closing of the dropped black pixels): a dark eye
    inside a fill does not break a core, an untouched dark background stays unhidden.
    """
    import cv2

    if source.shape != output.shape:
        raise ValueError(f"source and output differ in shape: {source.shape} vs {output.shape}")
    out_max = output.max(axis=2)
    black = out_max <= black_level
    dropped = (source.max(axis=2).astype(np.int16) - out_max) > min_change
    filled = black & dropped
    closed = cv2.morphologyEx(filled.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    hidden: BoolImage = filled | (black & (closed > 0))
    return hidden


@dataclass
class CategoryScore:
    """Per-category totals. ``objects`` counts label ids with at least one counted box."""

    boxes: int = 0
    masked: int = 0
    objects: int = 0
    objects_leaked: int = 0
    leaked_frames: int = 0
    longest_unmasked_run: int = 0

    @property
    def recall(self) -> float:
        return self.masked / self.boxes if self.boxes else 1.0

    def add(self, other: CategoryScore) -> None:
        self.boxes += other.boxes
        self.masked += other.masked
        self.objects += other.objects
        self.objects_leaked += other.objects_leaked
        self.leaked_frames += other.leaked_frames
        self.longest_unmasked_run = max(self.longest_unmasked_run, other.longest_unmasked_run)

    def to_dict(self) -> dict[str, float | int]:
        return {"recall": round(self.recall, 4), **asdict(self)}


@dataclass(frozen=True)
class ObjectLeak:
    """One labelled object left unmasked in at least one counted frame: where to look, and how small it was.

    ``runs`` are the unmasked stretches as inclusive ``[first, last]`` frame numbers, 1-based as in
    ``gt.txt``; ``min_side_px`` is the median shorter side of the object's unmasked boxes;
    ``core_hidden`` the median share of their cores that was hidden all the same: near 0 the object
    was never found there, near 1 a mask was on it but left an edge of the core showing."""

    category: str
    object_id: int
    leaked_frames: int
    counted_frames: int
    runs: tuple[tuple[int, int], ...]
    min_side_px: float
    core_hidden: float = 0.0

    @property
    def worst_frame(self) -> int:
        """A frame to look at (1-based): the middle of the longest unmasked run."""
        first, last = max(self.runs, key=lambda r: (r[1] - r[0], -r[0]))
        return (first + last) // 2

    @property
    def longest_run(self) -> int:
        return max((last - first + 1 for first, last in self.runs), default=0)

    def to_dict(self) -> dict[str, object]:
        return {
            "category": self.category,
            "object_id": self.object_id,
            "leaked_frames": self.leaked_frames,
            "counted_frames": self.counted_frames,
            "longest_run": self.longest_run,
            "runs": [list(r) for r in self.runs],
            "min_side_px": round(self.min_side_px, 1),
            "core_hidden": round(self.core_hidden, 3),
        }


@dataclass
class MaskShare:
    """Hidden pixels summed over frames, and how many lie outside every labelled box."""

    masked_px: int = 0
    outside_px: int = 0

    @property
    def share(self) -> float:
        return self.outside_px / self.masked_px if self.masked_px else 0.0

    def add(self, other: MaskShare) -> None:
        self.masked_px += other.masked_px
        self.outside_px += other.outside_px

    def to_dict(self) -> dict[str, float | int]:
        return {"false_mask_share": round(self.share, 4), **asdict(self)}


@dataclass
class VideoScore:
    """Scores of one clip, or of several added together (``add``)."""

    clips: int = 0
    frames: int = 0
    categories: dict[str, CategoryScore] = field(default_factory=dict)
    false_mask: dict[str, MaskShare] = field(default_factory=dict)
    leaks: list[ObjectLeak] = field(default_factory=list)
    """Per leaked object, where it leaked (a clip's own score; totals leave it empty)."""

    def add(self, other: VideoScore) -> None:
        self.clips += other.clips
        self.frames += other.frames
        for name, score in other.categories.items():
            self.categories.setdefault(name, CategoryScore()).add(score)
        for name, share in other.false_mask.items():
            self.false_mask.setdefault(name, MaskShare()).add(share)

    def to_dict(self) -> dict[str, object]:
        return {
            "clips": self.clips,
            "frames": self.frames,
            "categories": {name: s.to_dict() for name, s in sorted(self.categories.items())},
            "false_mask": {name: s.to_dict() for name, s in sorted(self.false_mask.items())},
            **({"leaks": [leak.to_dict() for leak in self.leaks]} if self.leaks else {}),
        }


class ClipScorer:
    """Feed one clip's hidden-pixel images in frame order (``add_frame``), then read ``result``.

    ``hidden`` is everything masked in the frame (a face under a plate's mask is hidden too);
    ``painted`` splits the same pixels by who painted them, for the false-mask shares (default:
    one entry, ``all``). Labelled frames never fed (a tool's output ran short) count as unmasked.
    """

    def __init__(self, labels: MotLabels, *, resolution_wh: tuple[int, int], rule: ScoreRule | None = None):
        self.labels = labels
        self.resolution_wh = resolution_wh
        self.rule = rule or ScoreRule()
        self._next = 0
        self._counts = self.rule.counts(labels.xyxy, labels.visibility)
        self._scores: dict[str, CategoryScore] = {c: CategoryScore() for c in sorted(set(labels.category))}
        self._shares: dict[str, MaskShare] = {}
        self._run: dict[tuple[str, int], tuple[int, int]] = {}  # (category, id) -> (last frame, run)
        self._seen: dict[tuple[str, int], int] = {}  # counted frames per object
        self._leaked: dict[tuple[str, int], list[tuple[int, float, float]]] = {}  # (frame, side, core hidden)

    def add_frame(
        self, index: int, hidden: BoolImage, *, painted: Mapping[str, BoolImage] | None = None
    ) -> None:
        width, height = self.resolution_wh
        if index != self._next:
            raise ValueError(f"frames must come in order: expected {self._next}, got {index}")
        if hidden.shape != (height, width):
            raise ValueError(f"hidden must have shape {(height, width)}, got {hidden.shape}")
        self._next += 1
        rows = self.labels.rows_at(index)
        xyxy = self.labels.xyxy[rows]
        for name, mask in (painted if painted is not None else {"all": hidden}).items():
            share = self._shares.setdefault(name, MaskShare())
            masked = int(np.count_nonzero(mask))
            share.masked_px += masked
            share.outside_px += masked - int(np.count_nonzero(mask & self._labelled(xyxy)))
        counted = self._counts[rows]
        if not counted.any():
            return
        unhidden, area = _core_unhidden(hidden, xyxy[counted], core_fraction=self.rule.core_fraction)
        covered = (unhidden == 0) & (area > 0)
        shares = _shares(unhidden, area)
        categories = [c for c, k in zip(self.labels.category[rows], counted.tolist(), strict=True) if k]
        ids = self.labels.object_id[rows][counted].tolist()
        sides = np.minimum(xyxy[counted, 2] - xyxy[counted, 0], xyxy[counted, 3] - xyxy[counted, 1]).tolist()
        leaked_here: set[str] = set()
        for category, object_id, ok, side, share in zip(
            categories, ids, covered.tolist(), sides, shares.tolist(), strict=True
        ):
            score = self._scores[category]
            key = (category, object_id)
            score.boxes += 1
            if key not in self._seen:
                self._seen[key] = 0
                score.objects += 1
            self._seen[key] += 1
            if ok:
                score.masked += 1
                continue
            leaked_here.add(category)
            if key not in self._leaked:
                self._leaked[key] = []
                score.objects_leaked += 1
            self._leaked[key].append((index, float(side), float(share)))
            last, run = self._run.get(key, (-2, 0))
            run = run + 1 if last == index - 1 else 1
            self._run[key] = (index, run)
            score.longest_unmasked_run = max(score.longest_unmasked_run, run)
        for category in leaked_here:
            self._scores[category].leaked_frames += 1

    def _labelled(self, xyxy: FloatArray) -> BoolImage:
        width, height = self.resolution_wh
        inside = np.zeros((height, width), dtype=np.bool_)
        for x1, y1, x2, y2 in xyxy.tolist():
            inside[max(int(np.floor(y1)), 0) : max(int(np.ceil(y2)), 0),
                   max(int(np.floor(x1)), 0) : max(int(np.ceil(x2)), 0)] = True  # fmt: skip
        return inside

    def result(self) -> VideoScore:
        """The clip's score; labelled frames after the last one fed count as wholly unmasked."""
        width, height = self.resolution_wh
        nothing = np.zeros((height, width), dtype=np.bool_)
        while self._next <= self.labels.last_frame:
            self.add_frame(self._next, nothing, painted={})
        return VideoScore(
            clips=1,
            frames=self._next,
            categories={name: CategoryScore(**asdict(s)) for name, s in self._scores.items()},
            false_mask={name: MaskShare(**asdict(s)) for name, s in self._shares.items()},
            leaks=[self._leak(key, rows) for key, rows in sorted(self._leaked.items())],
        )

    def _leak(self, key: tuple[str, int], unmasked: list[tuple[int, float, float]]) -> ObjectLeak:
        frames = [f for f, _, _ in unmasked]
        runs: list[tuple[int, int]] = []
        for frame in frames:
            if runs and runs[-1][1] == frame:  # 1-based last == this 0-based frame: consecutive
                runs[-1] = (runs[-1][0], frame + 1)
            else:
                runs.append((frame + 1, frame + 1))
        return ObjectLeak(
            category=key[0],
            object_id=key[1],
            leaked_frames=len(frames),
            counted_frames=self._seen[key],
            runs=tuple(runs),
            min_side_px=float(np.median([side for _, side, _ in unmasked])),
            core_hidden=float(np.median([share for _, _, share in unmasked])),
        )
