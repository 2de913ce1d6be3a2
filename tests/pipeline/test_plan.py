"""``Plan``: what a run decides from its spec, once (thresholds, tracking window, encoder options)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from veil.errors import SpecError
from veil.media import AudioStream, MediaInfo
from veil.pipeline import Plan, check_output, check_spec
from veil.report import MediaSummary, Report, TrackFrame, TrackReport
from veil.spec import RedactionSpec


class _CountingEngine:
    """Stands in for ``Engine`` where a plan only asks it for tuned thresholds."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def default_threshold(self, category: str) -> float | None:
        self.asked.append(category)
        return {"face": 0.3, "license_plate": 0.2}.get(category)


def test_thresholds_are_resolved_once_per_plan_not_per_frame() -> None:
    spec = RedactionSpec.model_validate({"categories": {"face": {}, "license_plate": {"threshold": 0.6}}})
    engine = _CountingEngine()
    plan = Plan.build(spec, engine=engine)  # type: ignore[arg-type]
    assert plan.categories == ("face", "license_plate")
    assert plan.thresholds == (None, 0.6)  # what the spec asks (stills' own detectors decide the rest)
    assert plan.video_thresholds == (0.3, 0.6)  # the tuned default only where the spec has none
    assert engine.asked == ["face"]


def test_a_face_detect_scale_too_coarse_for_small_faces_is_refused_with_the_lowest_that_works() -> None:
    coarse = RedactionSpec.model_validate({"detection": {"detect_scale": 0.1}})
    with pytest.raises(SpecError, match=r"detect_scale 0\.1 .* use at least"):
        check_spec(coarse)
    check_spec(RedactionSpec())  # the defaults pass
    without_faces = {"categories": {"license_plate": {}}, "detection": {"detect_scale": 0.1}}
    check_spec(RedactionSpec.model_validate(without_faces))  # the bound is the face detector's


def test_a_plan_that_does_not_detect_resolves_nothing() -> None:
    plan = Plan.build(RedactionSpec.model_validate({"categories": {"face": {}}}))
    assert plan.video_thresholds == (None,)


@pytest.mark.parametrize(
    ("every", "tracking", "widened", "overlap_at_30fps"),
    [
        (1, {"gap_frames": 10, "pad_before": 3, "pad_after": 6}, (10, 3, 6, 11), 30),
        (5, {"gap_frames": 2, "pad_before": 0, "pad_after": 1}, (5, 4, 4, 10), 30),
        (8, {"gap_frames": 40, "pad_before": 0, "pad_after": 0}, (40, 7, 7, 48), 72),
    ],
)
def test_the_tracker_window_widens_with_detect_every(
    every: int, tracking: dict[str, int], widened: tuple[int, int, int, int], overlap_at_30fps: int
) -> None:
    """A detector that skips frames must bridge, pad and keep tracks alive across what it skipped; split
    jobs overlap segments by about a second, and always by enough to bridge and pad."""
    spec = RedactionSpec.model_validate({"detection": {"detect_every": every}, "tracking": tracking})
    t = Plan.build(spec).tracking
    assert (t.gap_frames, t.pad_before, t.pad_after, t.max_age_frames) == widened
    assert t.overlap_frames(Fraction(30000, 1001)) == overlap_at_30fps
    assert t.overlap_frames(None) == overlap_at_30fps


def test_segments_pin_the_whole_sources_encoder_settings() -> None:
    spec = RedactionSpec.model_validate({"output": {"crf": 28, "keep_metadata": True, "keep_bitrate": True}})
    plan = Plan.build(spec)
    assert (plan.encoding.crf, plan.encoding.keep_metadata, plan.encoding.keep_bitrate) == (28, True, True)
    pinned = plan.segment_encoding(frame_rate=Fraction(25), bit_rate=900_000, b_frames=False)
    assert (pinned.crf, pinned.keep_bitrate) == (28, True)
    assert (pinned.frame_rate, pinned.bit_rate, pinned.b_frames) == (Fraction(25), 900_000, False)
    assert pinned.keep_metadata is False  # container tags are copied once, at the join


def _report(*tracks: tuple[int, str]) -> Report:
    summary = MediaSummary(kind="video", container="mp4", codec="h264", width=64, height=64)
    frames = [TrackFrame(frame=0, box=(1.0, 2.0, 11.0, 12.0), score=0.9)]
    return Report(
        kind="video",
        mode="detect",
        input=summary,
        tracks=[TrackReport(id=i, category=c, frames=frames) for i, c in tracks],
        input_sha256="0" * 64,
    )


@pytest.mark.parametrize(("scope", "kept"), [("include", [2]), ("exclude", [1, 3])])
def test_a_rerender_masks_the_reviewed_tracks_its_filter_keeps(scope: str, kept: list[int]) -> None:
    source = _report((1, "face"), (2, "license_plate"), (3, "face"))
    spec = RedactionSpec.model_validate(
        {"source_job": "job_x", "filter": {"track_ids": [2], "scope": scope}, "categories": {"face": {}}}
    )
    plan = Plan.build(spec, source_report=source)
    assert plan.categories == ("face", "license_plate")  # the source's categories come along
    tracks = plan.reviewed_tracks()
    assert [t.track_id for t in tracks] == kept
    assert [plan.categories[t.class_id] for t in tracks] == [
        c for i, c in [(1, "face"), (2, "license_plate"), (3, "face")] if i in kept
    ]


def _video(*, sound: bool, duration: float = 10.0) -> MediaInfo:
    audio = (
        (AudioStream(index=1, codec="aac", channels=1, sample_rate=48000, duration=duration),)
        if sound
        else ()
    )
    return MediaInfo(
        kind="video",
        container="mp4",
        codec="h264",
        width=64,
        height=48,
        rotation=0,
        fps=Fraction(30),
        frame_count=int(duration * 30),
        duration=duration,
        bit_rate=None,
        pix_fmt="yuv420p",
        audio=audio,
    )


_STILL = replace(
    _video(sound=False),
    kind="image",
    container="jpeg",
    codec="jpeg",
    fps=None,
    frame_count=1,
    duration=None,
    pix_fmt=None,
)


@pytest.mark.parametrize(
    ("audio", "info", "message"),
    [
        (
            {"mute": [{"start": 1, "end": 2}]},
            _STILL,
            "audio.mute applies to videos, but the input is an image",
        ),
        ({"mute": [{"start": 1, "end": 2}]}, _video(sound=False), "the video has no sound to silence"),
        (
            {"mute": [{"start": 1, "end": 2}, {"start": 12, "end": 13}]},
            _video(sound=True),
            r"audio.mute\[1\] starts at 12 s, after the video ends \(10.00 s\)",
        ),
    ],
    ids=["still", "silent-video", "after-the-end"],
)
def test_silences_that_would_change_nothing_are_refused(
    audio: dict[str, object], info: MediaInfo, message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        check_output(RedactionSpec.model_validate({"audio": audio}), info)


def test_removing_sound_a_file_does_not_have_is_what_was_asked() -> None:
    """Photos and clips can share one ``remove``: a still or a silent clip has no sound, as asked."""
    spec = RedactionSpec.model_validate({"audio": {"remove": True}})
    assert check_output(spec, _STILL) == ".jpg"
    assert check_output(spec, _video(sound=False)) == ".mp4"
    assert Plan.build(spec).sound.remove
    muted = Plan.build(RedactionSpec.model_validate({"audio": {"mute": [{"start": 1, "end": 2.5}]}}))
    assert muted.sound.silences == ((1.0, 2.5),) and not muted.sound.remove
