"""Long videos made from the shared real footage by stream copy (no re-encoding), for segment tests."""

from __future__ import annotations

from pathlib import Path

from veil.media.segments import concat_segments, split_at_keyframes

__all__ = ["SELFIE", "long_selfie"]

SELFIE = "selfie_portrait_noaudio.mp4"


def long_selfie(media_dir: Path, dst_dir: Path, *, repeats: int = 1) -> Path:
    """The selfie clip (600 frames, keyframes at 0, 250 and 500) ``repeats`` times, then its first 250
    frames: 850 frames with keyframes at 0, 250, 500 and 600 for ``repeats=1``, which split into 4
    segments at ``segment_seconds=5``. The face is on screen in every frame."""
    src = media_dir / SELFIE
    head = split_at_keyframes(src, dst_dir / "head", target_seconds=5)[0]
    dst = dst_dir / f"selfie-long-{repeats}.mp4"
    concat_segments([*([src] * repeats), head.path], dst, audio_from=None)
    return dst
