"""What a file is, decided from its first bytes, never from its name.

Uploads arrive with names chosen by whoever sent them: a JPEG called
``clip.mp4`` must still be read as a JPEG, and a text file called
``photo.jpg`` must be refused as "not media" rather than fail somewhere deep
in a decoder. The magic numbers below are the formats Veil accepts; anything
else is ``UnsupportedMedia`` before FFmpeg or Pillow ever sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from veil.errors import MediaError, UnsupportedMedia

__all__ = ["Sniffed", "sniff"]

HEAD_BYTES = 512

_HEIF_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1"}
"""ISO base media brands of HEIF still images (``mif1`` is the generic one, also under AVIF)."""
_IMAGE_SEQUENCE_BRANDS = {b"hevc", b"hevx", b"msf1", b"avis"}
"""Brands of HEIF and AVIF image sequences (bursts, animations): not read."""
_MOV_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_TS_SYNC = 0x47
_DHAV_FRAME_TYPES = {0xF0, 0xF1, 0xFC, 0xFD}
"""The frame types that open a Dahua DHAV chunk: audio, extra data, video, video keyframe."""
_HIKVISION_HEADER = 40
"""Bytes of the ``IMKH`` header that Hikvision recorders put before the MPEG-PS stream of an export."""
_H264_FIRST_NALS = {0x09, 0x06, 0x67, 0x47, 0x27, 0x07}
"""First byte of the first NAL unit of a raw H.264 stream: access unit delimiter, SEI, or sequence parameter
set (with any reference priority)."""
_HEVC_FIRST_NALS = {0x40, 0x42, 0x46, 0x4E}
"""First byte of the first NAL unit of a raw H.265 stream: VPS, SPS, access unit delimiter, prefix SEI (layer
0, whose second byte is then 0x01). None of them is a valid first H.264 NAL unit."""


@dataclass(frozen=True, slots=True)
class Sniffed:
    """The kind of a file and how to open it."""

    kind: Literal["image", "video"]
    container: str
    """Short container name: jpeg, png, webp, bmp, tiff, heic, avif, mp4, mov, mkv, webm, avi, ts, mpg, asf,
    flv, dav (Dahua), h264, hevc (raw streams)."""
    opener: str
    """Pillow format name for images, FFmpeg demuxer name for video."""


def sniff(path: Path) -> Sniffed:
    """Classify ``path`` by its magic number.

    Raises ``MediaError`` when the file cannot be read at all and
    ``UnsupportedMedia`` when it is not a format Veil handles.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except FileNotFoundError as exc:
        raise MediaError("input file not found") from exc
    except OSError as exc:
        raise MediaError("input file cannot be read") from exc
    if not head:
        raise UnsupportedMedia("file is empty")
    found = _classify(head)
    if found is None:
        raise UnsupportedMedia("not a supported image or video format")
    return found


def _classify(head: bytes) -> Sniffed | None:
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "jpeg", "JPEG")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "png", "PNG")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "webp", "WEBP")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Sniffed("image", "tiff", "TIFF")
    if head[:2] == b"BM" and len(head) >= 26 and head[6:10] == b"\x00\x00\x00\x00":
        return Sniffed("image", "bmp", "BMP")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return Sniffed("video", "avi", "avi")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        container = "webm" if b"webm" in head[:64] else "mkv"
        return Sniffed("video", container, "matroska")
    if _is_transport_stream(head):
        return Sniffed("video", "ts", "mpegts")
    if head.startswith(b"\x00\x00\x01\xba"):
        return Sniffed("video", "mpg", "mpeg")
    if head[:4] == b"IMKH":  # FFmpeg's PS and TS readers step over Hikvision's header to the stream
        stream = head[_HIKVISION_HEADER:]
        if stream.startswith(b"\x00\x00\x01\xba"):
            return Sniffed("video", "mpg", "mpeg")
        if _is_transport_stream(stream):
            return Sniffed("video", "ts", "mpegts")
        raise UnsupportedMedia(
            "a Hikvision file in the recorder's private stream format; export it from the recorder as "
            "MP4 (MPEG-PS), or convert it with Hikvision's player"
        )
    if head[:5] == b"DAHUA" or (head[:4] == b"DHAV" and len(head) > 4 and head[4] in _DHAV_FRAME_TYPES):
        return Sniffed("video", "dav", "dhav")
    if head.startswith(_ASF_GUID):
        return Sniffed("video", "asf", "asf")
    if head.startswith(b"FLV\x01"):
        return Sniffed("video", "flv", "flv")
    if head[4:8] in _MOV_BOXES:
        if head[4:8] == b"ftyp":
            still = _still_image(head)
            if still is not None:
                return still
            return Sniffed("video", "mov" if head[8:12] == b"qt  " else "mp4", "mov")
        return Sniffed("video", "mov", "mov")
    return _raw_stream(head)


def _still_image(head: bytes) -> Sniffed | None:
    """A HEIC or AVIF still (as phones shoot and the web serves them) by its major brand, or by ``avif``
    among the compatible brands of a generic ``mif1`` file; None for a video."""
    brand = head[8:12]
    if brand in _IMAGE_SEQUENCE_BRANDS:
        raise UnsupportedMedia("HEIF/AVIF image sequences are not supported; convert to MP4 or to stills")
    size = int.from_bytes(head[:4], "big")
    compatible = {head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)}
    if brand == b"avif" or (brand == b"mif1" and b"avif" in compatible):
        return Sniffed("image", "avif", "AVIF")
    if brand in _HEIF_IMAGE_BRANDS:
        return Sniffed("image", "heic", "HEIF")
    return None


def _raw_stream(head: bytes) -> Sniffed | None:
    """A raw H.264 or H.265 stream (Annex B: start codes, no container), as DVRs and IP cameras export
    ``.h264``/``.264``/``.h265`` files: a start code, then the NAL unit such a stream opens with."""
    for code in (b"\x00\x00\x00\x01", b"\x00\x00\x01"):
        if head.startswith(code) and len(head) > len(code) + 1:
            first, second = head[len(code)], head[len(code) + 1]
            if first in _H264_FIRST_NALS:
                return Sniffed("video", "h264", "h264")
            if first in _HEVC_FIRST_NALS and second == 0x01:
                return Sniffed("video", "hevc", "hevc")
    return None


def _is_transport_stream(head: bytes) -> bool:
    """MPEG-TS (dashcams, DVR exports, broadcast): a sync byte every 188 bytes; or every 192 bytes
    after a 4-byte timestamp (M2TS, as AVCHD camcorders write ``.mts``). Three in a row, so that a
    file merely starting with "G" is not taken for one."""
    return any(
        len(head) > offset + 2 * size and all(head[offset + k * size] == _TS_SYNC for k in range(3))
        for offset, size in ((0, 188), (4, 192))
    )
