"""Small JPEG crops of boxes in frames: the thumbnails a reviewer picks tracks by."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np

from veil.boxes import clip_xyxy
from veil.frames import RGBFrame
from veil.media.video import iter_frames

__all__ = ["frames_at", "write_crops"]


def frames_at(path: Path, indices: Collection[int]) -> dict[int, RGBFrame]:
    """The RGB frames of a video at ``indices``; decodes only up to the last one."""
    frames: dict[int, RGBFrame] = {}
    if not indices:
        return frames
    last = max(indices)
    for frame in iter_frames(path):
        if frame.index in indices:
            frames[frame.index] = frame.rgb()
        if frame.index >= last:
            break
    return frames


def write_crops(
    directory: Path, crops: Mapping[int, Sequence[tuple[str, np.ndarray]]], frames: Mapping[int, RGBFrame]
) -> None:
    """``<name>.jpg`` (at most 128 px a side) in ``directory`` for each ``(name, xyxy)`` box of ``crops``,
    cut from the frame of the same index in ``frames`` (a frame not given is skipped)."""
    import cv2

    directory.mkdir(parents=True, exist_ok=True)
    for frame_index, boxes in crops.items():
        rgb = frames.get(frame_index)
        if rgb is None:
            continue
        h, w = rgb.shape[:2]
        for name, xyxy in boxes:
            x1, y1, x2, y2 = (int(v) for v in clip_xyxy(xyxy.reshape(1, 4), resolution_wh=(w, h))[0])
            crop = rgb[y1 : max(y2, y1 + 1), x1 : max(x2, x1 + 1)]
            if crop.size == 0:
                continue
            scale = 128 / max(crop.shape[:2])
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            small = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=interpolation)
            ok, buf = cv2.imencode(
                ".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
            )
            if ok:
                (directory / f"{name}.jpg").write_bytes(buf.tobytes())
