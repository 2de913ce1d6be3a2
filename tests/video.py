"""Reading back one frame of a video, as tests that check pixels need, and short clips cut from real ones."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from veil.media.segments import concat_segments, split_at_keyframes

__all__ = ["SELFIE", "first_frames", "long_selfie", "selfie_head", "video_frame"]

SELFIE = "selfie_portrait_noaudio.mp4"


def video_frame(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` (0-based, decode order) of ``path``'s first video stream, as contiguous RGB."""
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
    raise AssertionError(f"{path.name} has no frame {index}")


def first_frames(src: Path, dst: Path, count: int) -> Path:
    """Write the first ``count`` frames of ``src`` to ``dst`` (H.264, crf 12, same size and rate)."""
    with av.open(str(src)) as source, av.open(str(dst), "w") as target:
        stream_in = source.streams.video[0]
        stream_out = target.add_stream("libx264", rate=stream_in.average_rate, options={"crf": "12"})
        stream_out.width = stream_in.codec_context.width
        stream_out.height = stream_in.codec_context.height
        stream_out.pix_fmt = "yuv420p"
        for i, frame in enumerate(source.decode(stream_in)):
            if i >= count:
                break
            frame.pts = None
            target.mux(stream_out.encode(frame))
        target.mux(stream_out.encode())
    return dst


def selfie_head(media_dir: Path, dst_dir: Path) -> Path:
    """The selfie clip's first 250 frames (up to its second keyframe), stream-copied, not re-encoded, and
    named as the clip: real footage at 40 % of the clip's cost, for end-to-end tests whose claim does
    not need the whole clip."""
    head = split_at_keyframes(media_dir / SELFIE, dst_dir / "cut", target_seconds=5)[0]
    return head.path.rename(dst_dir / SELFIE)


def long_selfie(media_dir: Path, dst_dir: Path, *, repeats: int = 1) -> Path:
    """The selfie clip (600 frames, keyframes at 0, 250 and 500) ``repeats`` times, then its first 250
    frames: 850 frames with keyframes at 0, 250, 500 and 600 for ``repeats=1``, which split into 4
    segments at ``segment_seconds=5`` (``bench/scale.py``, ``bench/reliability.py``). The face is on
    screen in every frame."""
    dst = dst_dir / f"selfie-long-{repeats}.mp4"
    concat_segments(
        [*([media_dir / SELFIE] * repeats), selfie_head(media_dir, dst_dir / "head")], dst, audio_from=None
    )
    return dst
