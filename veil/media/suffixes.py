"""File-name suffixes Veil treats as media. Only a hint (for walking directories and naming blobs):
what a file *is* is always decided by its content (``veil.media.probe``)."""

from __future__ import annotations

__all__ = ["MEDIA_SUFFIXES"]

MEDIA_SUFFIXES = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".png",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
    }
)
