"""probe: what a user uploads is described correctly, and what it must refuse is refused clearly."""

from __future__ import annotations

import shutil
import struct
import time
import tracemalloc
import zlib
from fractions import Fraction
from pathlib import Path

import pytest

from tests.media.synthetic import make_clip
from veil.errors import CorruptMedia, MediaError, MediaTooLarge, UnsupportedMedia
from veil.media import MediaInfo, probe

REAL_MEDIA = [
    # name, kind, container, codec, (w, h), frames, fps, audio codecs, duration
    ("faces_2560x1920_audio.mp4", "video", "mp4", "h264", (2560, 1920), 14, Fraction(10), ("aac",), 1.4),
    ("selfie_portrait_noaudio.mp4", "video", "mp4", "h264", (608, 1080), 600, Fraction(30), (), 20.0),
    ("plates_fisheye_audio.mp4", "video", "mp4", "h264", (2560, 1920), 24, Fraction(10), ("aac",), 3.18),
    ("city_crowd.jpg", "image", "jpeg", "jpeg", (800, 564), 1, None, (), None),
    ("street.jpg", "image", "jpeg", "jpeg", (1080, 1920), 1, None, (), None),
    ("faces_2560.png", "image", "png", "png", (2560, 1920), 1, None, (), None),
    ("plates_fisheye.png", "image", "png", "png", (2560, 1920), 1, None, (), None),
]


@pytest.mark.parametrize(
    ("name", "kind", "container", "codec", "size_wh", "frames", "fps", "audio", "duration"), REAL_MEDIA
)
def test_real_media_is_described_correctly(
    media_dir: Path,
    name: str,
    kind: str,
    container: str,
    codec: str,
    size_wh: tuple[int, int],
    frames: int,
    fps: Fraction | None,
    audio: tuple[str, ...],
    duration: float | None,
) -> None:
    info = probe(media_dir / name)
    assert (info.kind, info.container, info.codec) == (kind, container, codec)
    assert (info.width, info.height) == size_wh
    assert info.frame_count == frames
    assert info.fps == fps
    assert isinstance(info.fps, Fraction | None)
    assert tuple(a.codec for a in info.audio) == audio
    assert info.rotation == 0
    if duration is None:
        assert info.duration is None
    else:
        assert info.duration == pytest.approx(duration, abs=0.01)
    if kind == "video":
        assert info.bit_rate is not None and info.bit_rate > 0
        assert info.pix_fmt == "yuv420p"


def test_audio_track_facts(media_dir: Path) -> None:
    (track,) = probe(media_dir / "faces_2560x1920_audio.mp4").audio
    assert (track.codec, track.channels, track.sample_rate) == ("aac", 2, 44100)
    assert track.duration == pytest.approx(1.09, abs=0.01)


def test_media_info_is_frozen(media_dir: Path) -> None:
    info = probe(media_dir / "city_crowd.jpg")
    with pytest.raises(AttributeError):
        info.width = 1  # type: ignore[misc]
    assert isinstance(info, MediaInfo)


def test_kind_comes_from_content_not_the_name(media_dir: Path, tmp_path: Path) -> None:
    disguised = tmp_path / "holiday.mp4"
    shutil.copy(media_dir / "street.jpg", disguised)
    info = probe(disguised)
    assert (info.kind, info.container, info.width, info.height) == ("image", "jpeg", 1080, 1920)

    video_as_jpg = tmp_path / "clip.jpg"
    shutil.copy(media_dir / "faces_2560x1920_audio.mp4", video_as_jpg)
    assert probe(video_as_jpg).frame_count == 14


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.jpg", b"this is a shopping list, not a photo\n" * 20),
        ("empty.mp4", b""),
        ("page.png", b"<!doctype html><html><body>hello</body></html>"),
    ],
)
def test_non_media_is_unsupported(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnsupportedMedia) as caught:
        probe(path)
    _assert_clean_message(caught.value, path)


def test_missing_file_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not found"):
        probe(tmp_path / "nope.mp4")


def test_truncated_real_mp4_is_corrupt(media_dir: Path, tmp_path: Path) -> None:
    data = (media_dir / "faces_2560x1920_audio.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptMedia) as caught:
        probe(cut)
    _assert_clean_message(caught.value, cut)


def test_truncated_faststart_mp4_is_corrupt(tmp_path: Path) -> None:
    """With the index up front the file opens fine; the sample table shows the data is missing."""
    clip = make_clip(tmp_path / "fs.mp4", frames=30, container_options={"movflags": "+faststart"})
    data = clip.read_bytes()
    cut = tmp_path / "fs_cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    with pytest.raises(CorruptMedia, match="truncated"):
        probe(cut)


def test_truncated_matroska_is_corrupt(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mkv", frames=30)
    data = clip.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(CorruptMedia, match="truncated"):
        probe(cut)


def test_truncated_jpeg_is_corrupt(media_dir: Path, tmp_path: Path) -> None:
    data = (media_dir / "city_crowd.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptMedia):
        probe(cut)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("max_pixels", [None, 40_000_000])
def test_decompression_bomb_is_refused_without_allocating(tmp_path: Path, max_pixels: int | None) -> None:
    bomb = _png_header_only(tmp_path / "bomb.png", 50_000, 50_000)  # 7.5 GB if decoded
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(MediaTooLarge):
            probe(bomb, max_pixels=max_pixels)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000
    assert time.perf_counter() - started < 2.0


def test_image_over_pixel_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    moderate = _png_header_only(tmp_path / "big.png", 6000, 4000)  # only a header: decoding it would fail
    with pytest.raises(MediaTooLarge, match="24000000 pixels; the limit is 20000000"):
        probe(moderate, max_pixels=20_000_000)


def test_limits_apply_to_video(media_dir: Path) -> None:
    selfie = media_dir / "selfie_portrait_noaudio.mp4"
    with pytest.raises(MediaTooLarge, match="pixels"):
        probe(selfie, max_pixels=600 * 1000)
    with pytest.raises(MediaTooLarge, match="20.0 s"):
        probe(selfie, max_duration_s=10)
    assert probe(selfie, max_pixels=608 * 1080, max_duration_s=20.0).frame_count == 600


@pytest.mark.parametrize(
    ("name", "fmt", "codec", "audio", "container", "video_codec", "audio_codec"),
    [
        ("clip.mkv", "matroska", "libx264", "aac", "mkv", "h264", "aac"),
        ("clip.webm", "webm", "libvpx-vp9", "libopus", "webm", "vp9", "opus"),
        ("clip.avi", "avi", "mpeg4", "libmp3lame", "avi", "mpeg4", "mp3"),
        ("clip.mov", "mov", "libx264", "pcm_s16le", "mov", "h264", "pcm_s16le"),
        ("clip.mp4", "mp4", "libx265", None, "mp4", "hevc", None),
    ],
)
def test_other_containers_and_codecs(
    tmp_path: Path,
    name: str,
    fmt: str,
    codec: str,
    audio: str | None,
    container: str,
    video_codec: str,
    audio_codec: str | None,
) -> None:
    options = {"x265-params": "log-level=error"} if codec == "libx265" else None
    time_base = Fraction(1, 30) if fmt == "avi" else Fraction(1, 1000)
    clip = make_clip(
        tmp_path / name,
        fmt=fmt,
        codec=codec,
        audio=audio,
        frames=20,
        time_base=time_base,
        encoder_options=options,
    )
    info = probe(clip)
    assert (info.kind, info.container, info.codec) == ("video", container, video_codec)
    assert info.frame_count == 20
    assert info.fps is not None and abs(float(info.fps) - 30) < 0.5
    assert tuple(a.codec for a in info.audio) == ((audio_codec,) if audio_codec else ())


@pytest.mark.parametrize(("ccw_degrees", "rotation"), [(90, 270), (-90, 90), (180, 180), (0, 0)])
def test_rotation_from_display_matrix(tmp_path: Path, ccw_degrees: int, rotation: int) -> None:
    clip = make_clip(tmp_path / "rot.mp4", frames=5, display_rotation=ccw_degrees)
    info = probe(clip)
    assert info.rotation == rotation
    assert (info.width, info.height) == (64, 48)  # stored size, not displayed size


def test_rotation_from_legacy_rotate_tag(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "legacy.mkv", frames=5, stream_tags={"rotate": "90"})
    assert probe(clip).rotation == 90


def test_variable_frame_rate_counts_frames_not_time(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "vfr.mkv", pts=[0, 33, 66, 150, 400, 433, 1000])
    info = probe(clip)
    assert info.frame_count == 7
    assert info.duration == pytest.approx(1.033, abs=0.01)


def _assert_clean_message(error: Exception, path: Path) -> None:
    message = str(error)
    assert message and "\n" not in message
    assert str(path) not in message and path.name not in message
