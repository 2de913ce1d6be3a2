"""Tracks as bytes: a compressed NumPy ``.npz`` with no pickles, for passing tracks between workers.

Segment-parallel jobs store each segment's tracks, and the stitched ones, this way. Scalars (timings)
may travel along as ``scalar_<name>`` entries.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from veil.track.tracks import Track

__all__ = ["tracks_from_npz", "tracks_to_npz"]


def tracks_to_npz(tracks: Sequence[Track], **scalars: float) -> bytes:
    """``tracks`` (and named float ``scalars``) as the bytes of one ``.npz`` file."""
    buf = io.BytesIO()
    arrays: dict[str, Any] = {
        "track_id": np.array([t.track_id for t in tracks], dtype=np.int64),
        "class_id": np.array([t.class_id for t in tracks], dtype=np.int64),
        "length": np.array([len(t.frames) for t in tracks], dtype=np.int64),
        "frames": np.concatenate([t.frames for t in tracks]) if tracks else np.zeros(0, np.int64),
        "xyxy": np.concatenate([t.xyxy for t in tracks]) if tracks else np.zeros((0, 4), np.float32),
        "score": np.concatenate([t.score for t in tracks]) if tracks else np.zeros(0, np.float32),
    }
    for name, value in scalars.items():
        arrays[f"scalar_{name}"] = np.array(value, dtype=np.float64)
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def tracks_from_npz(data: bytes) -> tuple[list[Track], dict[str, float]]:
    """The tracks and scalars ``tracks_to_npz`` wrote."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        ends = np.cumsum(npz["length"])
        starts = ends - npz["length"]
        tracks = [
            Track(
                track_id=int(tid),
                class_id=int(cid),
                frames=npz["frames"][a:b],
                xyxy=npz["xyxy"][a:b],
                score=npz["score"][a:b],
            )
            for tid, cid, a, b in zip(npz["track_id"], npz["class_id"], starts, ends, strict=True)
        ]
        scalars = {name[7:]: float(npz[name]) for name in npz.files if name.startswith("scalar_")}
    return tracks, scalars
