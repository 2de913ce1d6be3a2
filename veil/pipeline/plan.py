"""``Plan``: everything one run decides from its spec (and, for a re-render, the source report), once.

The stages (``analyse``, ``stitch``, ``render``, ``report``) take a plan instead of the spec, so that
what the spec means is worked out in one place: the category table, the score thresholds (a custom
category's tuned default costs a hash of its model file), the masking effects, how detections become
tracks when the detector skips frames, and the encoder options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from veil.detect.registry import Overrides, category_overrides, check_detect_scale
from veil.errors import SpecError
from veil.media import EncodeOptions, MediaInfo, SoundEdit
from veil.media.formats import AUTO_IMAGE_SUFFIXES, IMAGE_SUFFIXES
from veil.redact import Redactor, build_redactor
from veil.report import Report
from veil.spec import Method, RedactionSpec, Region, Shape, TrackedRegion, resolve_strength
from veil.track import Track

if TYPE_CHECKING:
    from veil.pipeline.engine import Engine

__all__ = [
    "WEAK_FACTOR",
    "Plan",
    "TrackerSettings",
    "check_output",
    "check_spec",
    "output_suffix",
    "region_key",
]

WEAK_FACTOR = 0.5
"""Candidates scoring above ``threshold * WEAK_FACTOR`` may extend an existing track (never start one)."""


@dataclass(frozen=True)
class TrackerSettings:
    """How detections become tracks: the spec's tracking options, widened by ``detect_every`` (a detector
    that skips frames must bridge, pad and keep tracks alive across the frames it skipped)."""

    detect_every: int
    gap_frames: int
    pad_before: int
    pad_after: int
    smooth: float
    asked_reach: int
    """The longest of the spec's own gap and pads (before widening)."""

    @classmethod
    def from_spec(cls, spec: RedactionSpec) -> TrackerSettings:
        every, opts = spec.detection.detect_every, spec.tracking
        return cls(
            detect_every=every,
            gap_frames=max(opts.gap_frames, every),
            pad_before=max(opts.pad_before, every - 1),
            pad_after=max(opts.pad_after, every - 1),
            smooth=opts.smooth,
            asked_reach=max(opts.gap_frames, opts.pad_before, opts.pad_after),
        )

    @property
    def max_age_frames(self) -> int:
        """How long the online tracker keeps an unseen track alive."""
        return self.gap_frames + self.detect_every

    def overlap_frames(self, fps: Fraction | None) -> int:
        """Frames of the next segment each segment's analysis also tracks: about one second, and always
        enough to bridge a gap, pad a track and see the face in several detections on both sides."""
        second = round(float(fps)) if fps else 30
        return int(max(self.asked_reach + 4 * self.detect_every, second))


@dataclass(frozen=True)
class Plan:
    """One run's decisions; immutable, and safe to share between threads. Build it with ``Plan.build``."""

    spec: RedactionSpec
    categories: tuple[str, ...]
    """The category table: ``class_id`` i is ``categories[i]``."""
    thresholds: tuple[float | None, ...]
    """Per category, the score threshold the spec asks for (None: the detector's own)."""
    video_thresholds: tuple[float | None, ...]
    """Per category, the threshold that splits strong from weak boxes on video: the spec's, else the
    tuned default (resolved once here, not per frame)."""
    overrides: tuple[Overrides, ...]
    """Per category, the spec's detector settings beyond the threshold (``category_overrides``)."""
    redactors: tuple[Redactor, ...]
    region_redactors: Mapping[tuple[Method, Shape, int], Redactor]
    """Manual and tracked regions' effects, by ``region_key``."""
    track_redactors: Mapping[int, Redactor]
    """Per-track method or strength (``track_styles`` of a re-render), by track id."""
    tracking: TrackerSettings
    encoding: EncodeOptions
    """Encoder options of a whole-file render (split jobs pin rate, B-frames and bit rate on top)."""
    sound: SoundEdit
    """What the render does to a video's sound (``spec.audio``)."""
    source_report: Report | None = None
    """The reviewed detect job's report, for a re-render (``source_job``)."""

    @classmethod
    def build(
        cls, spec: RedactionSpec, *, engine: Engine | None = None, source_report: Report | None = None
    ) -> Plan:
        """The plan of ``spec``. Give the ``engine`` when the run detects: the tuned default thresholds
        are then resolved, once, here."""
        categories = _categories(spec, source_report)
        asked = {name: cat.threshold for name, cat in spec.categories.items()}
        thresholds = tuple(asked.get(c) for c in categories)
        video = tuple(
            t if t is not None or engine is None else engine.default_threshold(c)
            for c, t in zip(categories, thresholds, strict=True)
        )
        out = spec.output
        return cls(
            spec=spec,
            categories=categories,
            thresholds=thresholds,
            video_thresholds=video,
            overrides=tuple(category_overrides(spec, c) for c in categories),
            redactors=tuple(
                build_redactor(
                    spec.method_for(c),
                    shape=spec.shape_for(c),
                    mask_scale=spec.mask_scale_for(c),
                    mask_margin=spec.mask_margin_for(c),
                    strength=spec.strength_for(c),
                )
                for c in categories
            ),
            region_redactors={
                (m, s, k): build_redactor(m, shape=s, mask_scale=1.0, strength=k)
                for m, s, k in {region_key(spec, r) for r in _manual_regions(spec)}
            },
            track_redactors=_track_redactors(spec, source_report),
            tracking=TrackerSettings.from_spec(spec),
            encoding=EncodeOptions(
                codec=out.codec,
                crf=out.crf,
                preset=out.preset,
                keep_bitrate=out.keep_bitrate,
                keep_metadata=out.keep_metadata,
            ),
            sound=SoundEdit(
                remove=spec.audio.remove,
                silences=tuple((m.start, m.end) for m in spec.audio.mute),
                bleep=spec.audio.fill == "bleep",
            ),
            source_report=source_report,
        )

    @property
    def image_mode(self) -> str:
        """The detector mode for stills: the multi-scale search when asked for, else the video pass."""
        return "image" if self.spec.detection.image_search == "thorough" else "video"

    def segment_encoding(
        self, *, frame_rate: Fraction, bit_rate: int | None, b_frames: bool
    ) -> EncodeOptions:
        """Encoder options of one segment of a split job: the whole source's rate, bit rate and B-frame
        choice pinned, so that the pieces join by stream copy; container tags come at the join."""
        return replace(
            self.encoding, keep_metadata=False, bit_rate=bit_rate, b_frames=b_frames, frame_rate=frame_rate
        )

    def reviewed_tracks(self) -> list[Track]:
        """The source report's tracks this re-render masks (its ``filter`` applied), with this plan's
        class ids; empty without a source report."""
        report, spec = self.source_report, self.spec
        if report is None:
            return []
        chosen = set(spec.filter.track_ids) if spec.filter is not None else set()
        include = spec.filter is not None and spec.filter.scope == "include"
        return [
            Track(
                track_id=t.id,
                class_id=self.categories.index(t.category),
                frames=np.array([f.frame for f in t.frames], dtype=np.int64),
                xyxy=np.array([f.box for f in t.frames], dtype=np.float32).reshape(-1, 4),
                score=np.array([f.score for f in t.frames], dtype=np.float32),
            )
            for t in report.tracks
            if t.category in self.categories and (t.id in chosen) == include
        ]


def check_spec(spec: RedactionSpec) -> None:
    """``SpecError`` for a spec that validates but would quietly do less than it asks, judged by what
    only the detectors know: a face ``detect_scale`` too coarse to find a small face in a 1080p frame.
    The API (422 at submit) and the CLI refuse such a spec through this one check, before any work."""
    if "face" in spec.enabled_categories():
        check_detect_scale(spec.detection.detect_scale)


def check_output(spec: RedactionSpec, info: MediaInfo) -> str:
    """``output_suffix``, once what the spec asks of the output is checked against the input that a job
    or CLI run accepts: ``SpecError`` for a format of the other kind, or for sound to change where there
    is none (``spec.audio`` on a still; silences in a video without sound, or after its end)."""
    _check_audio(spec, info)
    return output_suffix(spec, info)


def output_suffix(spec: RedactionSpec, info: MediaInfo) -> str:
    """The file suffix a run of ``spec`` writes for ``info`` (``.mp4``, ``.jpg``, ...); ``SpecError``
    when the asked format does not fit the input."""
    fmt = spec.output.format
    if info.kind == "image":
        if fmt in ("mp4", "mov", "mkv"):
            raise SpecError(f"output format {fmt!r} is for video, but the input is an image")
        if fmt == "auto":
            return AUTO_IMAGE_SUFFIXES.get(info.container, ".png")
        return IMAGE_SUFFIXES[fmt]
    if fmt in IMAGE_SUFFIXES:
        raise SpecError(f"output format {fmt!r} is for images, but the input is a video")
    return ".mp4" if fmt == "auto" else f".{fmt}"


def _check_audio(spec: RedactionSpec, info: MediaInfo) -> None:
    """Refuse ``spec.audio`` where it would do nothing: silences on a still or on a video without
    sound, or a silence that starts after the video ends. Removing sound a file does not have is no
    error: the output has none, as asked (a folder of photos and clips can share one spec)."""
    audio = spec.audio
    if not audio.mute:
        return
    if info.kind == "image":
        raise SpecError("audio.mute applies to videos, but the input is an image")
    if not info.audio:
        raise SpecError("audio.mute: the video has no sound to silence")
    if info.duration is not None:
        for i, span in enumerate(audio.mute):
            if span.start >= info.duration:
                raise SpecError(
                    f"audio.mute[{i}] starts at {span.start:g} s, "
                    f"after the video ends ({info.duration:.2f} s)"
                )


def region_key(spec: RedactionSpec, region: Region | TrackedRegion) -> tuple[Method, Shape, int]:
    """Which of ``Plan.region_redactors`` masks a manual or tracked region: method, shape, strength."""
    return (region.method or spec.method, region.shape, spec.region_strength(region))


def _track_redactors(spec: RedactionSpec, source_report: Report | None) -> dict[int, Redactor]:
    category_of = {t.id: t.category for t in source_report.tracks} if source_report is not None else {}
    redactors: dict[int, Redactor] = {}
    for style in spec.track_styles:
        category = category_of.get(style.track_id, "")
        strength = spec.strength_for(category) if style.strength is None else resolve_strength(style.strength)
        redactors[style.track_id] = build_redactor(
            style.method or spec.method_for(category),
            shape=spec.shape_for(category),
            mask_scale=spec.mask_scale_for(category),
            mask_margin=spec.mask_margin_for(category),
            strength=strength,
        )
    return redactors


def _manual_regions(spec: RedactionSpec) -> list[Region | TrackedRegion]:
    return [*spec.regions, *spec.tracked_regions]


def _categories(spec: RedactionSpec, source_report: Report | None) -> tuple[str, ...]:
    """The enabled categories, then those a source report has tracks of (unless the spec disables them)."""
    categories = list(spec.enabled_categories())
    if source_report is not None:
        disabled = {name for name, cat in spec.categories.items() if not cat.enabled}
        for t in source_report.tracks:
            if t.category not in categories and t.category not in disabled:
                categories.append(t.category)
    return tuple(categories)
