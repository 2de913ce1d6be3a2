"""``sniff``: a file is what its first bytes say, whatever its name; anything else is refused before a
decoder sees it."""

from __future__ import annotations

import io
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image
from pillow_heif import register_heif_opener

from tests.media import cctv
from tests.media.synthetic import make_clip
from veil.errors import MediaError, UnsupportedMedia
from veil.media.sniff import Sniffed, sniff

register_heif_opener()  # to write the HEIC sample


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("JPEG", Sniffed("image", "jpeg", "JPEG")),
        ("PNG", Sniffed("image", "png", "PNG")),
        ("WEBP", Sniffed("image", "webp", "WEBP")),
        ("TIFF", Sniffed("image", "tiff", "TIFF")),
        ("BMP", Sniffed("image", "bmp", "BMP")),
    ],
)
def test_images_are_known_by_their_bytes_not_their_name(fmt: str, expected: Sniffed, tmp_path: Path) -> None:
    misnamed = tmp_path / "holiday.mp4"  # the name lies; the bytes decide
    misnamed.write_bytes(_image(fmt))
    assert sniff(misnamed) == expected


def test_phone_and_web_stills_heic_and_avif_are_known_by_their_bytes(tmp_path: Path) -> None:
    photo = Image.new("RGB", (64, 48), (200, 30, 30))
    photo.save(tmp_path / "a.heic", quality=80)
    photo.save(tmp_path / "b.avif", quality=80)
    assert sniff((tmp_path / "a.heic").rename(tmp_path / "a.mp4")) == Sniffed("image", "heic", "HEIF")
    assert sniff((tmp_path / "b.avif").rename(tmp_path / "b.mov")) == Sniffed("image", "avif", "AVIF")
    generic = tmp_path / "c.bin"  # a generic HEIF brand with AVIF among the compatible ones
    generic.write_bytes(b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif" + b"\x00" * 16)
    assert sniff(generic) == Sniffed("image", "avif", "AVIF")


@pytest.mark.parametrize(
    ("fmt", "suffix", "expected"),
    [
        ("mp4", ".mp4", Sniffed("video", "mp4", "mov")),
        ("mov", ".mov", Sniffed("video", "mov", "mov")),
        ("matroska", ".mkv", Sniffed("video", "mkv", "matroska")),
        ("avi", ".avi", Sniffed("video", "avi", "avi")),
        ("mpegts", ".ts", Sniffed("video", "ts", "mpegts")),
        ("mpeg", ".mpg", Sniffed("video", "mpg", "mpeg")),
        ("asf", ".wmv", Sniffed("video", "asf", "asf")),
        ("flv", ".flv", Sniffed("video", "flv", "flv")),
    ],
)
def test_real_clips_of_every_container(fmt: str, suffix: str, expected: Sniffed, tmp_path: Path) -> None:
    codec = {"mpeg": "mpeg2video", "flv": "flv"}.get(fmt, "mpeg4")
    clip = make_clip(tmp_path / f"clip{suffix}", fmt=fmt, codec=codec, frames=3, time_base=Fraction(1, 30))
    renamed = clip.rename(tmp_path / "clip.jpg")
    assert sniff(renamed) == expected


def test_m2ts_with_its_timestamped_packets_is_a_transport_stream(tmp_path: Path) -> None:
    clip = make_clip(
        tmp_path / "00001.mts",
        fmt="mpegts",
        codec="mpeg4",
        frames=3,
        container_options={"mpegts_m2ts_mode": "1"},
    )
    assert clip.read_bytes()[:1] != b"G" and clip.read_bytes()[4:5] == b"G"  # 4 bytes of timestamp first
    assert sniff(clip) == Sniffed("video", "ts", "mpegts")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda src, dst: cctv.dahua_dav(src, dst, frames=3), Sniffed("video", "dav", "dhav")),
        (lambda src, dst: cctv.hikvision_export(src, dst, frames=3), Sniffed("video", "mpg", "mpeg")),
        (
            lambda src, dst: cctv.hikvision_export(src, dst, frames=3, transport=True),
            Sniffed("video", "ts", "mpegts"),
        ),
        (lambda src, dst: cctv.raw_stream(src, dst, frames=3), Sniffed("video", "h264", "h264")),
        (
            lambda src, dst: cctv.raw_stream(src, dst, codec="libx265", frames=3),
            Sniffed("video", "hevc", "hevc"),
        ),
    ],
    ids=["dahua-dav", "hikvision-ps", "hikvision-ts", "raw-h264", "raw-h265"],
)
def test_cctv_recorder_exports_are_known_by_their_bytes(
    make: Callable[[Path, Path], Path], expected: Sniffed, media_dir: Path, tmp_path: Path
) -> None:
    export = make(
        media_dir / "selfie_portrait_noaudio.mp4", tmp_path / "export.mp4"
    )  # recorders name them so
    assert sniff(export) == expected


@pytest.mark.parametrize(
    ("head", "container"),
    [
        (b"DAHUA" + b"\x00" * 40, "dav"),  # the 1 KiB file header some Dahua exports open with
        (b"\x00\x00\x01\x09\x10" + b"\x00" * 8, "h264"),  # a 3-byte start code, then an access unit delimiter
        (b"\x00\x00\x00\x01\x46\x01\x10" + b"\x00" * 8, "hevc"),  # H.265's access unit delimiter
    ],
    ids=["dahua-file-header", "h264-short-start-code", "h265-delimiter"],
)
def test_other_openings_of_recorder_streams(head: bytes, container: str, tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(head)
    assert sniff(path).container == container


def test_webm_is_told_apart_from_matroska(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.webm", fmt="webm", codec="libvpx", frames=3)
    assert sniff(clip) == Sniffed("video", "webm", "matroska")


@pytest.mark.parametrize(
    ("head", "kind", "container"),
    [
        (b"\x00\x00\x00\x08moov" + b"\x00" * 8, "video", "mov"),  # an old QuickTime file without ftyp
        (b"\x00\x00\x00\x14ftypqt  " + b"\x00" * 8, "video", "mov"),
        (b"\x00\x00\x00\x14ftypisom" + b"\x00" * 8, "video", "mp4"),
    ],
    ids=["moov-first", "quicktime-brand", "isom-brand"],
)
def test_iso_media_brands(head: bytes, kind: str, container: str, tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(head)
    found = sniff(path)
    assert (found.kind, found.container) == (kind, container)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "file is empty"),
        (b"hello, this is text and not an image\n", "not a supported image or video format"),
        (b"GIF89a" + b"\x00" * 32, "not a supported image or video format"),
        (b"%PDF-1.7\n", "not a supported image or video format"),
        (b"G" + b"ood morning, this text only starts like a transport stream\n" * 8, "not a supported"),
        (b"BM" + b"\x01" * 30, "not a supported image or video format"),  # 'BM' text, not a bitmap header
        (b"\x00\x00\x00\x18ftyphevc" + b"\x00" * 8, "HEIF/AVIF image sequences are not supported"),
        (b"\x00\x00\x00\x18ftypavis" + b"\x00" * 8, "HEIF/AVIF image sequences are not supported"),
        (b"DHAV\x00" + b"\x00" * 32, "not a supported image or video format"),  # no DHAV frame type
        (b"IMKH" + b"\x00" * 60, "Hikvision file in the recorder's private stream format"),
        (b"\x00\x00\x00\x01\x65\x88" + b"\x00" * 8, "not a supported"),  # a slice first: no stream header
        (b"\x00\x00\x00\x01\x40\x00" + b"\x00" * 8, "not a supported"),  # H.265's VPS byte, wrong second
    ],
    ids=[
        "empty",
        "text",
        "gif",
        "pdf",
        "g-text",
        "bm-text",
        "heic-burst",
        "avif-animation",
        "dhav-text",
        "imkh-alone",
        "h264-slice-first",
        "not-h265",
    ],
)
def test_what_is_not_media_is_refused_with_a_reason(content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(UnsupportedMedia, match=message):
        sniff(path)


def test_a_missing_or_unreadable_file_is_a_media_error_without_its_path(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not found") as missing:
        sniff(tmp_path / "gone.jpg")
    assert str(tmp_path) not in str(missing.value)
    with pytest.raises(MediaError, match="cannot be read") as folder:
        sniff(tmp_path)  # a directory opens with IsADirectoryError
    assert not isinstance(folder.value, UnsupportedMedia)
