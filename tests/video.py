"""Reading back one frame of a video, as tests that check pixels need."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

__all__ = ["video_frame"]


def video_frame(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` (0-based, decode order) of ``path``'s first video stream, as contiguous RGB."""
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
    raise AssertionError(f"{path.name} has no frame {index}")
