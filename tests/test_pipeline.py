"""The engine end to end on real media: what a user of ``veil redact`` would check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from veil.boxes import box_iou_xyxy
from veil.errors import CorruptMedia, SpecError, UnsupportedMedia
from veil.media import iter_frames, probe, read_image
from veil.pipeline import Engine, output_suffix, run
from veil.report import Report
from veil.spec import RedactionSpec

FACES = "faces_2560x1920_audio.mp4"


@pytest.fixture(scope="module")
def faces_redacted(
    engine: Engine, media_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Report, Path]:
    """The faces clip redacted once for this module with the default spec: report and output.
    The timing-and-audio test checks it; the every-file test takes it as that clip's run."""
    out = tmp_path_factory.mktemp("faces") / "out.mp4"
    return run(engine, RedactionSpec(), media_dir / FACES, out), out


def test_video_keeps_frames_timing_and_audio(media_dir: Path, faces_redacted: tuple[Report, Path]) -> None:
    src = media_dir / FACES
    report, out = faces_redacted
    before, after = probe(src), probe(out)
    assert after.frame_count == before.frame_count
    assert after.fps == before.fps
    assert before.fps is not None and before.duration is not None and after.duration is not None
    assert abs(after.duration - before.duration) <= 1 / float(before.fps) + 1e-6
    assert [a.codec for a in after.audio] == [a.codec for a in before.audio]
    for a, b in zip(after.audio, before.audio, strict=True):
        assert a.duration is not None and b.duration is not None
        assert abs(a.duration - b.duration) < 0.05
    assert report.counts["face"] >= 1
    assert report.output_sha256 and report.input_sha256 != report.output_sha256


def test_image_faces_are_masked_and_rest_untouched(engine: Engine, media_dir: Path, tmp_path: Path) -> None:
    src = media_dir / "city_crowd.jpg"
    out = tmp_path / ("out" + output_suffix(RedactionSpec(), probe(src)))
    report = run(engine, RedactionSpec(output={"format": "png"}), src, out.with_suffix(".png"))
    assert report.counts["face"] >= 5
    original = read_image(src).astype(np.int16)
    redacted = read_image(out.with_suffix(".png")).astype(np.int16)
    for track in report.tracks:
        x1, y1, x2, y2 = (int(v) for v in track.frames[0].box)
        cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
        patch = slice(max(cy - 2, 0), cy + 3), slice(max(cx - 2, 0), cx + 3)
        assert np.abs(original[patch] - redacted[patch]).mean() > 0 or original[patch].std() < 2
    # Far from every box (a box size away, or beyond the mask margin of a tiny one) the picture is the
    # same (lossless output).
    mask = np.zeros(original.shape[:2], dtype=bool)
    for track in report.tracks:
        x1, y1, x2, y2 = track.frames[0].box
        reach = RedactionSpec().mask_margin_for(track.category) + 1
        w, h = max(x2 - x1, reach), max(y2 - y1, reach)
        mask[max(int(y1 - h), 0) : int(y2 + h), max(int(x1 - w), 0) : int(x2 + w)] = True
    assert np.array_equal(original[~mask], redacted[~mask])


@pytest.mark.parametrize("fmt", ["heic", "avif"])
def test_a_phone_photo_is_masked_and_written_as_jpeg_without_its_location(
    engine: Engine, media_dir: Path, tmp_path: Path, fmt: str
) -> None:
    """HEIC (iPhones) and AVIF stills are read, masked like the JPEG they came from, and written as JPEG
    (Veil writes neither): the colour profile kept, the GPS position and camera tags dropped."""
    from PIL import Image, ImageCms
    from pillow_heif import register_heif_opener

    register_heif_opener()
    jpeg = media_dir / "city_crowd.jpg"
    with Image.open(jpeg) as photo:
        exif = photo.getexif()
        exif[0x010F] = "Apple"  # Make
        exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}  # GPS
        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        src = tmp_path / f"IMG_0001.{fmt}"
        photo.save(src, quality=90, exif=exif.tobytes(), icc_profile=srgb)
    spec = RedactionSpec(categories={"face": {}})
    out = tmp_path / ("out" + output_suffix(spec, probe(src)))
    assert out.suffix == ".jpg"

    report = run(engine, spec, src, out)
    reference = run(engine, spec, jpeg, tmp_path / "reference.jpg")
    assert abs(report.counts["face"] - reference.counts["face"]) <= 2 and report.counts["face"] >= 15
    with Image.open(out) as written:
        assert written.format == "JPEG" and written.size == (800, 564)
        assert written.info.get("icc_profile") == srgb
        tags = written.getexif()
        assert 0x010F not in tags and not tags.get_ifd(0x8825)


def test_a_detect_run_makes_a_jpeg_preview_only_of_stills_browsers_cannot_show(
    engine: Engine, media_dir: Path, tmp_path: Path
) -> None:
    from PIL import Image

    with Image.open(media_dir / "city_crowd.jpg") as jpeg:
        jpeg.save(tmp_path / "scan.tiff")
    review = tmp_path / "review"
    review.mkdir()
    run(engine, RedactionSpec(mode="detect"), tmp_path / "scan.tiff", None, thumbnails_dir=review)
    with Image.open(review / "preview.jpg") as preview:
        assert preview.format == "JPEG" and preview.size == (800, 564)
    shown = tmp_path / "shown"
    shown.mkdir()
    run(engine, RedactionSpec(mode="detect"), media_dir / "city_crowd.jpg", None, thumbnails_dir=shown)
    assert not (shown / "preview.jpg").exists()  # a JPEG shows as it is


SELFIE = "selfie_portrait_noaudio.mp4"


@pytest.fixture(scope="module")
def selfie_redacted(
    engine: Engine, media_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Report, Path]:
    """The selfie clip redacted once for this module with the default face spec: report and output.
    The every-frame test checks it in depth; the every-file test takes it as the selfie's run."""
    out = tmp_path_factory.mktemp("selfie") / "selfie.mp4"
    return run(engine, RedactionSpec(categories={"face": {}}), media_dir / SELFIE, out), out


@pytest.mark.slow
def test_selfie_face_is_masked_in_every_frame(
    engine: Engine, media_dir: Path, selfie_redacted: tuple[Report, Path]
) -> None:
    """Every frame carries a masked face box whose pixels lost their detail, and wherever an
    independent detector pass (every 3rd frame, to keep CI short) sees the face, the output has
    no findable face there."""
    import cv2

    src = media_dir / SELFIE
    report, out = selfie_redacted
    boxes: dict[int, tuple[float, float, float, float]] = {}
    for track in report.tracks:
        for f in track.frames:
            boxes.setdefault(f.frame, f.box)
    assert len(boxes) == 600, "a face box in every frame"

    def detail(rgb: np.ndarray, box: tuple[float, float, float, float]) -> float:
        x1, y1, x2, y2 = (int(v) for v in box)
        w, h = x2 - x1, y2 - y1
        core = rgb[y1 + h // 4 : y2 - h // 4, x1 + w // 4 : x2 - w // 4]
        return float(cv2.Laplacian(cv2.cvtColor(core, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())

    # The face fills a third of the frame, so a 480 px reference pass sees it whenever it is there.
    with engine.detector("face", threshold=0.5, mode="video", detect_scale=0.5) as det:
        seen = 0
        for original, redacted in zip(iter_frames(src), iter_frames(out), strict=True):
            box = boxes[original.index]
            assert detail(redacted.rgb(), box) < detail(original.rgb(), box) / 4, f"frame {original.index}"
            if original.index % 3:
                continue
            faces = det.detect(original.rgb())
            if not len(faces):
                continue
            seen += 1
            left = det.detect(redacted.rgb())
            if len(left):
                overlap = box_iou_xyxy(faces.xyxy, left.xyxy)
                assert overlap.max() < 0.3, f"face still detectable in frame {original.index}"
    assert seen > 100, "the reference pass should see the face in most frames"


@pytest.mark.slow
def test_every_shared_media_file_redacts(
    engine: Engine,
    media_dir: Path,
    tmp_path: Path,
    selfie_redacted: tuple[Report, Path],
    faces_redacted: tuple[Report, Path],
) -> None:
    """Each file gives an output of its own size; videos with the cheap knobs (every 4th frame at half
    scale, ultrafast x264), except the selfie and faces clips, whose redactions this module already made
    (with the default detection, which does more than the cheap knobs)."""
    made = {SELFIE: selfie_redacted, FACES: faces_redacted}
    for src in sorted(media_dir.iterdir()):
        info = probe(src)
        out = tmp_path / (src.stem + output_suffix(RedactionSpec(), info))
        fast = RedactionSpec(
            detection={"detect_every": 4, "detect_scale": 0.5}, output={"preset": "ultrafast"}
        )
        if src.name in made:
            report, out = made[src.name]
        else:
            report = run(engine, fast if info.kind == "video" else RedactionSpec(), src, out)
        assert out.exists() and report.output is not None
        assert report.output.width == info.width and report.output.height == info.height


def test_detect_mode_returns_tracks_and_thumbnails(engine: Engine, media_dir: Path, tmp_path: Path) -> None:
    thumbs = tmp_path / "thumbs"
    report = run(
        engine,
        RedactionSpec(mode="detect"),
        media_dir / "faces_2560x1920_audio.mp4",
        None,
        thumbnails_dir=thumbs,
    )
    assert report.tracks and report.output is None
    for track in report.tracks:
        assert (thumbs / f"{track.id}.jpg").stat().st_size > 0
        frames = [f.frame for f in track.frames]
        assert frames == sorted(frames)


def test_review_loop_renders_from_source_tracks_without_detecting(
    engine: Engine, media_dir: Path, tmp_path: Path
) -> None:
    src = media_dir / "city_crowd.jpg"
    detected = run(engine, RedactionSpec(mode="detect"), src, None)
    keep = detected.tracks[0].id
    spec = RedactionSpec(
        source_job="job-1",
        filter={"track_ids": [keep], "scope": "include"},
        regions=[{"box": (0, 0, 40, 40), "method": "black"}],
        output={"format": "png"},
    )
    out = tmp_path / "review.png"
    report = run(engine, spec, src, out, source_report=detected)
    assert [t.id for t in report.tracks] == [keep]
    assert "detect" in report.timings and report.timings["detect"] < 0.5
    assert (read_image(out)[5:35, 5:35] == 0).all()


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda p, _media: p.write_text("this is not a video"), UnsupportedMedia),
        (
            lambda p, media: p.write_bytes((media / "faces_2560x1920_audio.mp4").read_bytes()[:60_000]),
            CorruptMedia,
        ),
    ],
    ids=["text-file", "truncated-mp4"],
)
def test_bad_input_raises_clear_errors(engine: Engine, media_dir: Path, tmp_path: Path, make, error) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.mp4"
    make(bad, media_dir)
    with pytest.raises(error):
        run(engine, RedactionSpec(), bad, tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


def test_spec_mismatch_is_a_spec_error(engine: Engine, media_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError):
        run(engine, RedactionSpec(output={"format": "mp4"}), media_dir / "street.jpg", tmp_path / "x.mp4")


def test_tracked_regions_follow_their_keyframes_and_zones_have_a_time_span(
    engine: Engine, tmp_path: Path
) -> None:
    from tests.media.synthetic import make_clip
    from tests.video import video_frame

    src = make_clip(tmp_path / "in.mp4", size_wh=(160, 120), frames=30, rate=10)
    spec = RedactionSpec(
        tracked_regions=[
            {
                "keyframes": [{"frame": 5, "box": (0, 0, 20, 20)}, {"frame": 15, "box": (100, 60, 120, 80)}],
                "method": "black",
            }
        ],
        exclusion_zones=[{"box": (0, 0, 160, 120), "start": 2.0}],
    )
    out = tmp_path / "out.mp4"
    run(engine, spec, src, out)

    def dark(frame: np.ndarray, box: tuple[int, int, int, int]) -> bool:
        x1, y1, x2, y2 = box
        return bool(frame[y1 + 3 : y2 - 3, x1 + 3 : x2 - 3].max() < 40)

    assert not dark(video_frame(out, 4), (0, 0, 20, 20))  # before the first keyframe
    assert dark(video_frame(out, 5), (0, 0, 20, 20))
    assert dark(video_frame(out, 10), (50, 30, 70, 50))  # halfway: interpolated
    assert not dark(video_frame(out, 10), (0, 0, 20, 20))
    assert dark(video_frame(out, 15), (100, 60, 120, 80))  # a zone never unmasks a manual region
    assert not dark(video_frame(out, 16), (100, 60, 120, 80))  # after the last keyframe


@pytest.mark.parametrize(
    "keyframes",
    [
        [],
        [{"frame": 3, "box": (0, 0, 5, 5)}, {"frame": 3, "box": (0, 0, 6, 6)}],
        [{"frame": 0, "box": (5, 0, 1, 5)}],
    ],
    ids=["empty", "repeated-frame", "inverted-box"],
)
def test_bad_tracked_regions_are_refused(keyframes: list[dict[str, object]]) -> None:
    with pytest.raises(ValueError):
        RedactionSpec.model_validate({"tracked_regions": [{"keyframes": keyframes}]})


def test_tracked_region_boxes_are_interpolated_linearly() -> None:
    spec = RedactionSpec.model_validate(
        {
            "tracked_regions": [
                {"keyframes": [{"frame": 10, "box": (0, 0, 10, 10)}, {"frame": 20, "box": (10, 20, 30, 40)}]}
            ]
        }
    )
    region = spec.tracked_regions[0]
    assert region.box_at(9) is None and region.box_at(21) is None
    assert region.box_at(10) == (0, 0, 10, 10)
    assert region.box_at(15) == (5, 10, 20, 25)
    assert region.box_at(20) == (10, 20, 30, 40)


def test_exclusion_zones_apply_only_during_their_time_span() -> None:
    from veil.detections import Detections
    from veil.pipeline import Plan
    from veil.pipeline.rendering import _outside_zones

    dets = Detections(
        xyxy=np.array([[10, 10, 20, 20], [100, 100, 110, 110]], np.float32),
        confidence=np.ones(2, np.float32),
        class_id=np.zeros(2, np.int64),
    )
    plan = Plan.build(RedactionSpec(exclusion_zones=[{"box": (0, 0, 50, 50), "start": 1.0, "end": 2.0}]))
    assert len(_outside_zones(dets, plan, 0.5)) == 2
    assert _outside_zones(dets, plan, 1.5).xyxy.tolist() == [[100, 100, 110, 110]]
    assert len(_outside_zones(dets, plan, 2.5)) == 2


def test_track_styles_mask_one_track_its_own_way(engine: Engine, media_dir: Path, tmp_path: Path) -> None:
    src = media_dir / "city_crowd.jpg"
    detected = run(engine, RedactionSpec(mode="detect"), src, None)
    styled, plain = detected.tracks[0], detected.tracks[1]
    spec = RedactionSpec(
        source_job="job-1",
        track_styles=[{"track_id": styled.id, "method": "black"}],
        output={"format": "png"},
    )
    out = tmp_path / "styled.png"
    run(engine, spec, src, out, source_report=detected)
    rgb = read_image(out)

    def centre(box: tuple[float, float, float, float]) -> np.ndarray:
        cx, cy = int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2)
        return rgb[cy - 1 : cy + 2, cx - 1 : cx + 2]

    assert centre(styled.frames[0].box).max() == 0  # black, as asked for this track
    assert centre(plain.frames[0].box).max() > 0  # blurred, as its category says
    with pytest.raises(ValueError, match="source_job"):
        RedactionSpec(track_styles=[{"track_id": 1, "method": "black"}])
