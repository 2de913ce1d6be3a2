"""Video decode and transcode.

The output keeps frame count, timing, rotation and audio, and drops identifying tags.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.media.synthetic import loudness, make_clip, top_level_boxes
from veil.errors import CorruptMedia
from veil.media import EncodeOptions, RGBFrame, SoundEdit, VideoFrame, iter_frames, probe, transcode_video
from veil.media.probe import probe_video

FAST = EncodeOptions(preset="ultrafast")
UNCHANGED: Callable[[VideoFrame], RGBFrame | None] = lambda frame: None  # noqa: E731
IDENTIFYING_TAGS = {"location", "location-eng", "com.apple.quicktime.location.ISO6709", "make", "model"}
IDENTIFYING_TAGS |= {"creation_time", "com.apple.quicktime.make", "com.apple.quicktime.model"}
PHONE_TAGS = {
    "location": "+48.8577+002.2950/",
    "com.apple.quicktime.location.ISO6709": "+48.8577+002.2950+035.000/",
    "make": "Apple",
    "model": "iPhone 15",
    "creation_time": "2024-05-01T10:00:00.000000Z",
}


def _times(path: Path) -> list[float]:
    return [frame.time_s for frame in iter_frames(path)]


def _luma(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="gray").astype(np.int16) for f in container.decode(video=0)]


@pytest.mark.parametrize(
    ("name", "frames"),
    [
        ("faces_2560x1920_audio.mp4", 14),
        pytest.param("plates_fisheye_audio.mp4", 24, marks=pytest.mark.slow),
        pytest.param("selfie_portrait_noaudio.mp4", 600, marks=pytest.mark.slow),
    ],
)
def test_iter_frames_yields_every_frame_probe_counts(media_dir: Path, name: str, frames: int) -> None:
    info = probe(media_dir / name)
    seen = list(iter_frames(media_dir / name))
    assert len(seen) == info.frame_count == frames
    assert [f.index for f in seen] == list(range(frames))
    times = [f.time_s for f in seen]
    assert times == sorted(times)
    assert info.fps is not None
    assert times[1] - times[0] == pytest.approx(float(1 / info.fps), abs=1e-3)


def test_frames_convert_to_rgb_lazily_once(media_dir: Path) -> None:
    frame = next(iter_frames(media_dir / "selfie_portrait_noaudio.mp4"))
    assert frame._rgb is None  # nothing converted until someone looks
    rgb = frame.rgb()
    assert rgb.shape == (1080, 608, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
    assert frame.rgb() is rgb
    assert (frame.index, frame.pts, frame.time_s, frame.time_base) == (0, 0, 0.0, Fraction(1, 15360))


def test_cheap_views_match_the_exact_conversion(media_dir: Path) -> None:
    """The detector's RGB and the motion thumbnail take shortcuts; they must still show the picture."""
    frame = next(iter(iter_frames(media_dir / "selfie_portrait_noaudio.mp4")))
    reference = frame.av_frame.reformat(width=64, height=48, format="gray").to_ndarray().astype(int)
    assert np.abs(frame.gray_thumbnail().astype(int) - reference).mean() <= 4
    fast = frame.detection_rgb()
    assert np.median(np.abs(fast.astype(int) - frame.rgb().astype(int))) <= 2
    assert frame.detection_rgb() is frame.rgb()  # once the exact one exists, it is reused


@pytest.mark.slow
def test_transcode_real_clip_keeps_frames_timing_and_audio(media_dir: Path, tmp_path: Path) -> None:
    """plates_fisheye starts its video 0.8 s after its audio: the offset must survive."""
    src = media_dir / "plates_fisheye_audio.mp4"
    dst = tmp_path / "out.mp4"
    done: list[int] = []
    transcode_video(src, dst, UNCHANGED, options=FAST, progress=done.append)
    before, after = probe(src), probe(dst)
    assert after.frame_count == before.frame_count == 24
    assert done[-1] == 24
    assert after.fps == before.fps == Fraction(10)
    assert (after.width, after.height, after.codec, after.pix_fmt) == (2560, 1920, "h264", "yuv420p")
    assert after.duration == pytest.approx(before.duration, abs=0.1)  # one frame at 10 fps
    assert _times(dst) == pytest.approx(_times(src), abs=1e-3)
    (audio_in,), (audio_out,) = before.audio, after.audio
    assert (audio_out.codec, audio_out.channels, audio_out.sample_rate) == ("aac", 2, 44100)
    assert audio_out.duration == pytest.approx(audio_in.duration, abs=0.03)
    assert top_level_boxes(dst).index("moov") < top_level_boxes(dst).index("mdat")  # faststart


@pytest.mark.slow
def test_transcode_second_real_clip(media_dir: Path, tmp_path: Path) -> None:
    src = media_dir / "faces_2560x1920_audio.mp4"
    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, lambda f: f.rgb() if f.index % 2 else None, options=FAST)
    before, after = probe(src), probe(dst)
    assert (after.frame_count, after.fps) == (14, Fraction(10))
    assert after.duration == pytest.approx(1.4, abs=0.1)
    assert [a.codec for a in after.audio] == ["aac"]
    assert after.audio[0].duration == pytest.approx(before.audio[0].duration, abs=0.03)


def test_audio_is_copied_packet_for_packet(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mkv", audio="aac", frames=30)
    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, UNCHANGED, options=FAST)

    def audio_payloads(path: Path) -> list[bytes]:
        with av.open(str(path)) as container:
            return [bytes(p) for p in container.demux(audio=0) if p.size]

    assert audio_payloads(dst) == audio_payloads(src)


def test_audio_the_container_cannot_hold_is_converted_to_aac(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mov", audio="pcm_s16le", frames=30)
    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, UNCHANGED, options=FAST)
    before, after = probe(src), probe(dst)
    assert [a.codec for a in after.audio] == ["aac"]
    assert after.audio[0].duration == pytest.approx(before.audio[0].duration, abs=0.05)
    assert after.frame_count == 30


SOUND_FORMATS = pytest.mark.parametrize(
    ("suffix", "codec"),
    [(".mov", "pcm_s16le"), (".mkv", "aac"), (".mov", "pcm_u8")],
    ids=["packed-s16", "planar-float", "unsigned-8-bit"],
)
"""Sound as cameras store it: packed 16-bit PCM, AAC (decoded as planar float), unsigned 8-bit PCM."""


@SOUND_FORMATS
def test_silenced_spans_are_quiet_and_the_rest_of_the_sound_is_kept(
    tmp_path: Path, suffix: str, codec: str
) -> None:
    """A spoken name at 0.5-1.0 s is silenced; the sound on either side is untouched, up to the edges of
    the span (AAC, which the sound is then written as, smears an edge by at most one of its frames)."""
    src = make_clip(tmp_path / f"in{suffix}", audio=codec, frames=60)  # 2 s of a loud 440 Hz tone
    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, UNCHANGED, options=FAST, sound=SoundEdit(silences=((0.5, 1.0),)))
    assert [a.codec for a in probe(dst).audio] == ["aac"]
    assert loudness(dst, 0.53, 0.97) < 0.002
    for start, end in ((0.05, 0.47), (1.03, 1.9)):
        assert loudness(dst, start, end) == pytest.approx(0.3 / np.sqrt(2), rel=0.1), (start, end)


@SOUND_FORMATS
def test_a_bleeped_span_holds_a_1_khz_tone_and_the_rest_is_kept(
    tmp_path: Path, suffix: str, codec: str
) -> None:
    src = make_clip(tmp_path / f"in{suffix}", audio=codec, frames=60)
    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, UNCHANGED, options=FAST, sound=SoundEdit(silences=((0.5, 1.0),), bleep=True))
    assert loudness(dst, 0.53, 0.97) == pytest.approx(0.1 / np.sqrt(2), rel=0.1)  # -20 dBFS
    assert loudness(dst, 0.05, 0.47) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)
    with av.open(str(dst)) as container:
        rate = container.streams.audio[0].sample_rate
        samples = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    for (start, end), pitch in (((0.53, 0.97), 1000), ((1.03, 1.9), 440)):
        window = samples[int(start * rate) : int(end * rate)]
        spectrum = np.abs(np.fft.rfft(window))
        assert np.fft.rfftfreq(len(window), 1 / rate)[spectrum.argmax()] == pytest.approx(pitch, abs=5)


def test_removed_sound_leaves_no_track(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mkv", audio="aac", frames=30)
    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, UNCHANGED, options=FAST, sound=SoundEdit(remove=True))
    after = probe(dst)
    assert after.audio == () and after.frame_count == 30


def test_variable_frame_rate_keeps_every_timestamp(tmp_path: Path) -> None:
    pts = [0, 33, 66, 150, 183, 400, 433, 466, 600, 1000]
    src = make_clip(tmp_path / "vfr.mkv", pts=pts)
    dst = tmp_path / "vfr.mp4"
    transcode_video(src, dst, lambda f: f.rgb() if f.index == 4 else None, options=FAST)
    assert _times(dst) == pytest.approx([p / 1000 for p in pts], abs=1e-3)
    after = probe(dst)
    assert after.frame_count == len(pts)
    assert after.duration == pytest.approx(1.033, abs=0.034)  # the last frame is shown for its full time


@pytest.mark.parametrize(("ccw_degrees", "hflip"), [(90, False), (-90, False), (180, False), (-90, True)])
def test_rotation_and_mirroring_are_kept(tmp_path: Path, ccw_degrees: int, hflip: bool) -> None:
    src = make_clip(tmp_path / "rot.mp4", frames=6, display_rotation=ccw_degrees, hflip=hflip)
    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, lambda f: f.rgb(), options=FAST)
    before, after = probe_video(src), probe_video(dst)
    assert after.display_matrix == before.display_matrix is not None
    assert after.info.rotation == before.info.rotation
    assert (after.info.width, after.info.height) == (64, 48)


def test_legacy_rotate_tag_becomes_a_display_matrix(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "legacy.mkv", frames=6, stream_tags={"rotate": "90"})
    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, UNCHANGED, options=FAST)
    assert probe(dst).rotation == 90


def test_identifying_tags_are_stripped_unless_kept(tmp_path: Path) -> None:
    src = make_clip(
        tmp_path / "phone.mov",
        fmt="mov",
        container_tags=PHONE_TAGS,
        container_options={"movflags": "use_metadata_tags"},
    )
    with av.open(str(src)) as container:
        assert IDENTIFYING_TAGS & set(container.metadata) >= {"make", "model", "location"}

    stripped = tmp_path / "stripped.mp4"
    transcode_video(src, stripped, UNCHANGED, options=FAST)
    with av.open(str(stripped)) as container:
        tags = set(container.metadata) | {key for s in container.streams for key in s.metadata}
        assert not tags & IDENTIFYING_TAGS
    raw = stripped.read_bytes()
    assert b"iPhone" not in raw and b"+48.8577" not in raw

    kept = tmp_path / "kept.mp4"
    transcode_video(src, kept, UNCHANGED, options=EncodeOptions(preset="ultrafast", keep_metadata=True))
    with av.open(str(kept)) as container:
        assert container.metadata["model"] == "iPhone 15"
        assert container.metadata["com.apple.quicktime.location.ISO6709"].startswith("+48.8577")


def test_changed_frames_are_encoded_and_unchanged_ones_do_not_drift(tmp_path: Path) -> None:
    """A mask shows where it was drawn, and the RGB round trip does not shift brightness (no flicker)."""
    src = make_clip(tmp_path / "in.mp4", size_wh=(160, 96), frames=12, encoder_options={"crf": "10"})

    def mask_even(frame: VideoFrame) -> RGBFrame | None:
        if frame.index % 2:
            return None
        rgb = frame.rgb()
        if frame.index == 4:
            rgb[10:40, 20:60] = 0
        return rgb

    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, mask_even, options=EncodeOptions(preset="ultrafast", crf=0))
    before, after = _luma(src), _luma(dst)
    assert len(after) == len(before) == 12
    assert after[4][12:38, 22:58].max() < 25 and before[4][12:38, 22:58].mean() > 60
    for index in (0, 2, 6, 8):  # round-tripped through RGB
        assert abs(float((after[index] - before[index]).mean())) < 0.3
        assert float(np.abs(after[index] - before[index]).mean()) < 1.5
    for index in (1, 3, 5):  # encoded straight from YUV, losslessly
        assert np.array_equal(after[index], before[index])


def test_odd_sizes_are_kept(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "odd.mkv", size_wh=(65, 49), pix_fmt="yuv444p", frames=8)
    dst = tmp_path / "odd.mp4"
    transcode_video(src, dst, lambda f: f.rgb(), options=FAST)
    after = probe(dst)
    assert (after.width, after.height, after.frame_count) == (65, 49, 8)


def test_yuv444_input_with_even_size_becomes_yuv420p(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mkv", pix_fmt="yuv444p", frames=8)
    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, UNCHANGED, options=FAST)
    assert probe(dst).pix_fmt == "yuv420p"


@pytest.mark.slow
def test_keep_bitrate_lands_within_15_percent(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", size_wh=(320, 240), frames=90, encoder_options={"crf": "18"})
    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, UNCHANGED, options=EncodeOptions(preset="veryfast", keep_bitrate=True))
    target, got = probe(src).bit_rate, probe(dst).bit_rate
    assert target is not None and got is not None
    assert abs(got - target) / target < 0.15
    crf_only = tmp_path / "crf.mp4"
    transcode_video(src, crf_only, UNCHANGED, options=EncodeOptions(preset="veryfast", crf=35))
    assert (probe(crf_only).bit_rate or 0) < 0.5 * target  # crf, not the bit rate, rules without keep_bitrate


def test_h265_output_is_tagged_hvc1(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", frames=10, audio="aac")
    dst = tmp_path / "out.mp4"
    transcode_video(src, dst, lambda f: f.rgb(), options=EncodeOptions(codec="h265", preset="ultrafast"))
    after = probe(dst)
    assert (after.codec, after.frame_count, [a.codec for a in after.audio]) == ("hevc", 10, ["aac"])
    with av.open(str(dst)) as container:
        assert container.streams.video[0].codec_context.codec_tag == "hvc1"


def test_container_follows_the_suffix_or_the_argument(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", frames=5)
    transcode_video(src, tmp_path / "out.mkv", UNCHANGED, options=FAST)
    assert probe(tmp_path / "out.mkv").container == "mkv"
    transcode_video(src, tmp_path / "out.bin", UNCHANGED, options=FAST, container_format="mov")
    assert probe(tmp_path / "out.bin").container == "mov"
    with pytest.raises(ValueError, match="container_format"):
        transcode_video(src, tmp_path / "out.avi", UNCHANGED, options=FAST, container_format="avi")


def test_damaged_input_fails_cleanly_and_leaves_no_output(media_dir: Path, tmp_path: Path) -> None:
    data = bytearray((media_dir / "faces_2560x1920_audio.mp4").read_bytes())
    data[1_000_000:1_050_000] = b"\xff" * 50_000  # garbage in the middle of the video data
    src = tmp_path / "damaged.mp4"
    src.write_bytes(bytes(data))
    dst = tmp_path / "out.mp4"
    with pytest.raises(CorruptMedia) as caught:
        transcode_video(src, dst, UNCHANGED, options=FAST)
    assert "\n" not in str(caught.value) and "damaged.mp4" not in str(caught.value)
    assert not dst.exists()


def test_truncated_input_is_refused_before_encoding(tmp_path: Path) -> None:
    data = make_clip(tmp_path / "in.mkv", frames=30).read_bytes()
    src = tmp_path / "cut.mkv"
    src.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(CorruptMedia):
        transcode_video(src, tmp_path / "out.mp4", UNCHANGED, options=FAST)
    assert not (tmp_path / "out.mp4").exists()


def test_a_wrong_frame_from_process_is_a_programming_error(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", frames=5)
    dst = tmp_path / "out.mp4"
    with pytest.raises(ValueError, match="expected frame shape"):
        transcode_video(src, dst, lambda f: np.zeros((10, 10, 3), np.uint8), options=FAST)
    assert not dst.exists()


@pytest.mark.parametrize("kwargs", [{"crf": 52}, {"preset": "placebo"}, {"codec": "vp9"}, {"threads": -1}])
def test_encode_options_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        EncodeOptions(**kwargs)  # type: ignore[arg-type]
