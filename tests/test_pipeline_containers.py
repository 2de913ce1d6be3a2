"""Footage as CCTV systems, DVRs, dashcams and camcorders export it (MPEG-TS, M2TS, MPEG-PS, Windows
Media, Flash video; Dahua DAV, Hikvision exports, raw H.264/H.265 streams): read by its bytes, a face
masked in every frame, every frame, its timing and the sound kept."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest

from tests.media import cctv
from tests.media.synthetic import export_clip
from veil.media import iter_frames, probe
from veil.media.formats import PREVIEW_NAME
from veil.media.sniff import sniff
from veil.pipeline import Engine, run
from veil.report import Report
from veil.spec import RedactionSpec

FRAMES = 30


@pytest.mark.parametrize(
    ("name", "fmt", "video", "audio", "options", "container"),
    [
        ("dashcam.ts", "mpegts", "libx264", "mp2", {}, "ts"),
        ("camcorder.mts", "mpegts", "libx264", "ac3", {"mpegts_m2ts_mode": "1"}, "ts"),
        ("dvr.mpg", "mpeg", "mpeg2video", "mp2", {}, "mpg"),
        ("cctv.wmv", "asf", "wmv2", "wmav2", {}, "asf"),
        ("old.flv", "flv", "flv", "libmp3lame", {}, "flv"),
    ],
)
def test_exported_footage_is_masked_in_every_frame_with_its_sound(
    engine: Engine,
    media_dir: Path,
    tmp_path: Path,
    name: str,
    fmt: str,
    video: str,
    audio: str,
    options: dict[str, str],
    container: str,
) -> None:
    src = export_clip(
        media_dir / "selfie_portrait_noaudio.mp4",
        tmp_path / name,
        fmt=fmt,
        video=video,
        audio=audio,
        options=options,
    )
    assert sniff(src.rename(tmp_path / "renamed.bin")).container == container  # its bytes say what it is
    src = (tmp_path / "renamed.bin").rename(tmp_path / name)

    out = tmp_path / "out.mp4"
    report = run(engine, RedactionSpec(categories={"face": {}}, method="black"), src, out)

    before, after = probe(src), probe(out)
    assert after.frame_count == before.frame_count == FRAMES
    assert len(after.audio) == 1 and after.audio[0].duration is not None
    assert after.audio[0].duration == pytest.approx(1.0, abs=0.1)
    _assert_face_masked_in_every_frame(report, out, FRAMES)


def _assert_face_masked_in_every_frame(report: Report, out: Path, frames: int) -> None:
    boxes = {f.frame: f.box for t in report.tracks if t.category == "face" for f in t.frames}
    assert set(boxes) == set(range(frames)), sorted(boxes)  # the face has a mask in every frame
    for index, frame in enumerate(iter_frames(out)):
        x1, y1, x2, y2 = boxes[index]
        cx, cy = round((x1 + x2) / 2), round((y1 + y2) / 2)
        centre = frame.rgb()[cy - 3 : cy + 4, cx - 3 : cx + 4]
        assert centre.mean() < 24, (index, float(centre.mean()))  # black over the face


@pytest.mark.parametrize(
    ("make", "container", "fps", "sound"),
    [
        (lambda src, dst: cctv.dahua_dav(src, dst, frames=FRAMES, rate=25), "dav", 25, "pcm_alaw"),
        (lambda src, dst: cctv.hikvision_export(src, dst, frames=FRAMES), "mpg", 30, "mp2"),
        (lambda src, dst: cctv.hikvision_export(src, dst, frames=FRAMES, transport=True), "ts", 30, "mp2"),
        (lambda src, dst: cctv.raw_stream(src, dst, frames=FRAMES, rate=15), "h264", 15, None),
        (
            lambda src, dst: cctv.raw_stream(src, dst, codec="libx265", frames=FRAMES, rate=10),
            "hevc",
            10,
            None,
        ),
    ],
    ids=["dahua-dav", "hikvision-ps", "hikvision-ts", "raw-h264-15fps", "raw-h265-10fps"],
)
def test_cctv_recorder_exports_are_masked_in_every_frame_at_their_own_pace(
    engine: Engine,
    media_dir: Path,
    tmp_path: Path,
    make: Callable[[Path, Path], Path],
    container: str,
    fps: int,
    sound: str | None,
) -> None:
    """What Dahua and Hikvision recorders and IP cameras export. A raw stream has no clock: its pace is
    the frame rate its own headers state (15 fps must not play at FFmpeg's default 25). A DAV is stamped
    with the time of day it was recorded: the output starts at 0 (no date in it), its sound in step."""
    src = make(media_dir / "selfie_portrait_noaudio.mp4", tmp_path / "export.bin")
    out = tmp_path / "out.mp4"
    report = run(engine, RedactionSpec(categories={"face": {}}, method="black"), src, out)

    before, after = probe(src), probe(out)
    assert before.container == container
    assert after.frame_count == before.frame_count == FRAMES
    assert after.fps == Fraction(fps)
    assert before.duration == pytest.approx(FRAMES / fps, abs=0.1)  # what the API reports of the upload
    times = [frame.time_s for frame in iter_frames(out)]
    assert times[-1] - times[0] == pytest.approx((FRAMES - 1) / fps, abs=0.01)
    assert 0 <= times[0] < 1  # on the file's own timeline, not the wall clock
    if sound is None:
        assert before.audio == after.audio == ()
    else:
        assert [a.codec for a in before.audio] == [sound]
        assert len(after.audio) == 1 and after.audio[0].duration is not None
        assert after.audio[0].duration == pytest.approx(FRAMES / fps, abs=0.2)
    _assert_face_masked_in_every_frame(report, out, FRAMES)


def test_spec_times_count_from_the_start_of_a_file_whose_clock_starts_late(
    engine: Engine, media_dir: Path, tmp_path: Path
) -> None:
    """A DVR's MPEG-PS starts half a second into its own clock (recorders' files can start hours in). A
    region "from 0 to 0.5 s" is the first half second a player shows (15 frames at 30 fps), not a span
    before the file's first frame, which would mask nothing."""
    dvr = export_clip(
        media_dir / "selfie_portrait_noaudio.mp4",
        tmp_path / "dvr.mpg",
        fmt="mpeg",
        video="mpeg2video",
        audio="mp2",
    )
    with av.open(str(dvr)) as container:
        assert container.start_time is not None and container.start_time > 0.4 * av.time_base
    out = tmp_path / "out.mp4"
    wall = (34.0, 34.0, 120.0, 120.0)  # plain wall, far from the face
    spec = {
        "categories": {"face": {"enabled": False}},
        "regions": [{"box": wall, "end": 0.5, "method": "black"}],
    }
    run(engine, RedactionSpec.model_validate(spec), dvr, out)
    frames = list(iter_frames(out))
    black = [float(frame.rgb()[40:110, 40:110].mean()) < 24 for frame in frames]
    assert black == [frame.time_s <= 0.5 for frame in frames], black
    assert sum(black) == 15  # half a second at 30 fps; before, none: every frame was after "0.5 s"
    assert frames[0].time_s == pytest.approx(0.0, abs=0.02)  # the output starts at 0 too


def test_a_detect_run_makes_a_preview_only_of_what_browsers_cannot_play(
    engine: Engine, media_dir: Path, tmp_path: Path
) -> None:
    """The review page plays the preview (H.264 MP4, every frame at its time) where the source will not."""
    selfie = media_dir / "selfie_portrait_noaudio.mp4"
    dvr = export_clip(selfie, tmp_path / "dvr.mpg", fmt="mpeg", video="mpeg2video", audio="mp2", options={})
    review = tmp_path / "review"
    review.mkdir()
    run(engine, RedactionSpec(mode="detect", categories={"face": {}}), dvr, None, thumbnails_dir=review)
    before, shown = probe(dvr), probe(review / PREVIEW_NAME)
    assert (shown.container, shown.codec) == ("mp4", "h264")
    assert shown.frame_count == before.frame_count == FRAMES
    assert shown.fps == before.fps and len(shown.audio) == 1

    mp4 = export_clip(selfie, tmp_path / "phone.mp4", fmt="mp4", video="libx264", audio="aac", options={})
    playable = tmp_path / "playable"
    playable.mkdir()
    run(engine, RedactionSpec(mode="detect", categories={"face": {}}), mp4, None, thumbnails_dir=playable)
    assert not (playable / PREVIEW_NAME).exists()  # an H.264 MP4 plays as it is
