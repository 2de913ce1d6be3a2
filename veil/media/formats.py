"""Every table of file suffixes, containers and MIME types, in one place.

Suffixes are only hints (for walking directories, naming blobs and choosing an output): what a
file *is* is always decided by its content (``veil.media.sniff``). Pure data, no PyAV, so that
any layer may read it cheaply.
"""

from __future__ import annotations

__all__ = [
    "CONTENT_TYPES",
    "IMAGE_SUFFIXES",
    "MEDIA_SUFFIXES",
    "MUXER_ALIASES",
    "MUXER_BY_SUFFIX",
    "OUTPUT_FORMAT_BY_SUFFIX",
    "AUTO_IMAGE_SUFFIXES",
    "BROWSER_CODECS",
    "BROWSER_CONTAINERS",
    "BROWSER_IMAGE_CONTAINERS",
    "IMAGE_PREVIEW_NAME",
    "PREVIEW_NAME",
    "SOURCE_CONTENT_TYPES",
    "VIDEO_SUFFIXES",
    "content_type_for",
]

VIDEO_SUFFIXES = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".3gp",  # phones
        ".3g2",
        ".mkv",
        ".webm",
        ".avi",
        ".ts",  # MPEG-TS: dashcams, DVR exports, broadcast
        ".mts",  # M2TS, as AVCHD camcorders write it
        ".m2ts",
        ".mpg",  # MPEG-PS: DVR exports
        ".mpeg",
        ".asf",  # Windows Media: CCTV exports
        ".wmv",
        ".flv",
        ".dav",  # Dahua recorders
        ".h264",  # raw streams: DVRs, IP cameras
        ".264",
        ".h265",
        ".265",
        ".hevc",
    }
)
"""Suffixes of the video containers Veil reads (``veil.media.sniff`` decides by content all the same)."""

MEDIA_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"} | VIDEO_SUFFIXES
)
"""Suffixes Veil reads as media (directories are walked for these; other upload names lose their suffix)."""

OUTPUT_FORMAT_BY_SUFFIX: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "mkv",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".png": "png",
    ".webp": "webp",
}
"""The spec's ``output.format`` that writes a file of this suffix."""

IMAGE_SUFFIXES: dict[str, str] = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}
"""The suffix an image output format (or an input image container of that name) is written with."""

AUTO_IMAGE_SUFFIXES: dict[str, str] = {**IMAGE_SUFFIXES, "heic": ".jpg", "avif": ".jpg"}
"""The suffix an image is written with by default, by its input container: its own format where Veil writes
it, JPEG for the lossy phone and web formats it reads but does not write (HEIC, AVIF); else PNG."""

MUXER_BY_SUFFIX: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
"""The FFmpeg muxer of a video output suffix."""

MUXER_ALIASES: dict[str, str] = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "matroska": "matroska"}
"""FFmpeg muxer names by the container names callers use."""

CONTENT_TYPES: dict[str, str] = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
}
"""MIME types of the outputs Veil writes, by suffix."""

SOURCE_CONTENT_TYPES: dict[str, str] = {
    **CONTENT_TYPES,
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".3gp": "video/3gpp",
    ".3g2": "video/3gpp2",
    ".ts": "video/mp2t",
    ".mts": "video/mp2t",
    ".m2ts": "video/mp2t",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".asf": "video/x-ms-asf",
    ".wmv": "video/x-ms-wmv",
    ".flv": "video/x-flv",
    ".h264": "video/h264",
    ".264": "video/h264",
    ".h265": "video/h265",
    ".265": "video/h265",
    ".hevc": "video/h265",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".avif": "image/avif",
}
"""MIME types of the inputs Veil keeps (the source download), by suffix. A Dahua ``.dav`` has none registered
and is served as ``application/octet-stream``."""


def content_type_for(suffix: str) -> str:
    """The MIME type of an output suffix; ``application/octet-stream`` for anything else."""
    return CONTENT_TYPES.get(suffix.lower(), "application/octet-stream")


BROWSER_CONTAINERS = frozenset({"mp4", "mov", "webm"})
BROWSER_CODECS = frozenset({"h264", "vp8", "vp9", "av1"})
"""The containers and video codecs (``MediaInfo.container``, ``.codec``) every current browser's ``<video>``
plays. Anything else gets a preview for the review page (``veil.pipeline.write_video_preview``)."""

BROWSER_IMAGE_CONTAINERS = frozenset({"jpeg", "png", "webp", "bmp", "avif"})
"""The still containers every current browser's ``<img>`` shows (not HEIC, not TIFF)."""

PREVIEW_NAME = "preview.mp4"
"""The file name of a video's preview, beside a detect job's thumbnails."""
IMAGE_PREVIEW_NAME = "preview.jpg"
"""The file name of a still's preview (``veil.pipeline.write_image_preview``)."""
