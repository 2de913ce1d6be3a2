"""A short video cut from the shared real footage by stream copy (no re-encoding), for end-to-end tests
whose claim does not need the whole clip."""

from __future__ import annotations

from pathlib import Path

from veil.media.segments import split_at_keyframes

__all__ = ["SELFIE", "selfie_head"]

SELFIE = "selfie_portrait_noaudio.mp4"


def selfie_head(media_dir: Path, dst_dir: Path) -> Path:
    """The selfie clip's first 250 frames (up to its second keyframe), named as the clip: real footage
    at 40 % of the clip's cost to detect and encode."""
    head = split_at_keyframes(media_dir / SELFIE, dst_dir / "cut", target_seconds=5)[0]
    return head.path.rename(dst_dir / SELFIE)
