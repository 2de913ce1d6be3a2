"""Where a job's blobs live in storage. Every key of a job sits under ``jobs/<id>/``, so deleting
a job (or retention) is one ``delete_prefix``. Keys never hold a user's file name."""

from __future__ import annotations

from veil.media.formats import MEDIA_SUFFIXES

__all__ = [
    "MEDIA_SUFFIXES",
    "input_key",
    "job_prefix",
    "output_key",
    "preview_key",
    "report_key",
    "temp_output_key",
    "thumbnail_key",
]


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/"


def input_key(job_id: str, suffix: str = "") -> str:
    suffix = suffix.lower() if suffix.lower() in MEDIA_SUFFIXES else ""
    return f"jobs/{job_id}/input{suffix}"


def output_key(job_id: str, suffix: str) -> str:
    return f"jobs/{job_id}/output{suffix}"


def temp_output_key(job_id: str, attempt: int, suffix: str) -> str:
    """Written first, then promoted with ``move``: a reader never sees a half-written result."""
    return f"jobs/{job_id}/tmp/output-{attempt}{suffix}"


def report_key(job_id: str) -> str:
    return f"jobs/{job_id}/report.json"


def preview_key(job_id: str, suffix: str = ".mp4") -> str:
    """A detect job's copy of its video (``.mp4``) or still (``.jpg``) that browsers can show
    (``veil.pipeline.write_video_preview``, ``write_image_preview``)."""
    if suffix not in (".mp4", ".jpg"):
        raise ValueError(f"a preview is .mp4 or .jpg, not {suffix!r}")
    return f"jobs/{job_id}/preview{suffix}"


def thumbnail_key(job_id: str, track_id: int) -> str:
    return f"jobs/{job_id}/thumbs/{int(track_id)}.jpg"
