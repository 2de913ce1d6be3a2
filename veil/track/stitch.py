"""Join the tracks of video segments that were tracked separately, so ids survive the borders.

Segment-parallel processing (issue 5) runs one tracker per segment. Each
segment worker tracks its own frames plus ``overlap_frames`` of the next
segment, so a face crossing a border is seen by both workers on those shared
frames. Here the two views are matched on the shared frames and merged into
one track:

* a pair is a candidate when both tracks have the same class and cover at
  least one common frame; its score is the mean IoU over all common frames,
  which is robust to one noisy frame and keeps two faces that cross right at
  the border apart (their paths overlap in one frame, not in all of them);
* pairs are taken greedily, best score first, each track at most once per
  border (with the few tracks that reach a border, greedy and Hungarian agree
  in practice, and greedy needs no SciPy);
* merged tracks keep every frame of every piece; where pieces share a frame
  the box is the union and the score the maximum, so stitching never
  uncovers a pixel that either worker would have masked;
* chains run across any number of borders, and the result is renumbered
  1..n by first frame (then class), like ``finalize_tracks``.

Unmatched tracks stay separate, with all their frames, overlap included:
redaction fails closed, and two boxes on one face cost nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from veil.track.tracks import Track, track_from_frames

__all__ = ["stitch_segment_tracks"]


def stitch_segment_tracks(
    segments: Sequence[tuple[int, Sequence[Track]]], *, iou_threshold: float = 0.3
) -> list[Track]:
    """Merge per-segment tracks into video-wide tracks with ids 1..n.

    ``segments`` holds, in video order, each segment's global start frame and
    its tracks in local frame numbers (0 = the segment's first frame),
    including the overlap frames that belong to the next segment. Tracks of
    consecutive segments whose boxes agree on their common frames (mean IoU
    >= ``iou_threshold``, same class) become one track. Raises ``ValueError``
    when start frames are negative or not increasing.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    starts = [int(start) for start, _ in segments]
    if any(s < 0 for s in starts) or any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
        raise ValueError("segment start frames must be non-negative and increasing")

    # Every track in global frame numbers; node id = position in this flat list.
    nodes: list[Track] = []
    by_segment: list[list[int]] = []
    for start, tracks in segments:
        ids = []
        for track in tracks:
            ids.append(len(nodes))
            nodes.append(
                Track(
                    track_id=track.track_id,
                    class_id=track.class_id,
                    frames=track.frames + start,
                    xyxy=track.xyxy,
                    score=track.score,
                )
            )
        by_segment.append(ids)

    parent = list(range(len(nodes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for border in range(1, len(by_segment)):
        for a, b in _match_border(
            nodes, by_segment[border - 1], by_segment[border], starts[border], iou_threshold
        ):
            parent[find(b)] = find(a)

    groups: dict[int, list[int]] = {}
    for i in range(len(nodes)):
        groups.setdefault(find(i), []).append(i)
    merged = [_merge([nodes[i] for i in members]) for _, members in sorted(groups.items())]
    merged.sort(key=lambda t: (t.first_frame, t.class_id, t.last_frame))
    return [
        Track(track_id=n, class_id=t.class_id, frames=t.frames, xyxy=t.xyxy, score=t.score)
        for n, t in enumerate(merged, start=1)
    ]


def _match_border(
    nodes: Sequence[Track], left: Sequence[int], right: Sequence[int], border_frame: int, iou_threshold: float
) -> list[tuple[int, int]]:
    """One-to-one pairs (left node, right node) that agree on their common frames."""
    reaching = [i for i in left if nodes[i].last_frame >= border_frame]
    if not reaching:
        return []
    horizon = max(nodes[i].last_frame for i in reaching)
    candidates: list[tuple[float, int, int, int]] = []  # (-mean IoU, -common frames, left, right)
    for j in right:
        if nodes[j].first_frame > horizon:
            continue
        for i in reaching:
            a, b = nodes[i], nodes[j]
            if a.class_id != b.class_id:
                continue
            _, ia, ib = np.intersect1d(a.frames, b.frames, assume_unique=True, return_indices=True)
            if ia.size == 0:
                continue
            score = float(_paired_iou_xyxy(a.xyxy[ia], b.xyxy[ib]).mean())
            if score >= iou_threshold:
                candidates.append((-score, -int(ia.size), i, j))
    candidates.sort()
    used_left: set[int] = set()
    used_right: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, _, i, j in candidates:
        if i in used_left or j in used_right:
            continue
        used_left.add(i)
        used_right.add(j)
        pairs.append((i, j))
    return pairs


def _paired_iou_xyxy(
    a_xyxy: npt.NDArray[np.float32], b_xyxy: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """IoU of row i of ``a_xyxy`` with row i of ``b_xyxy`` (not all pairs, unlike ``box_iou_xyxy``)."""
    lt = np.maximum(a_xyxy[:, :2], b_xyxy[:, :2])
    rb = np.minimum(a_xyxy[:, 2:], b_xyxy[:, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[:, 0] * wh[:, 1]
    area_a = (a_xyxy[:, 2] - a_xyxy[:, 0]) * (a_xyxy[:, 3] - a_xyxy[:, 1])
    area_b = (b_xyxy[:, 2] - b_xyxy[:, 0]) * (b_xyxy[:, 3] - b_xyxy[:, 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def _merge(pieces: Sequence[Track]) -> Track:
    """One track over all frames of ``pieces``; shared frames get the union box and the best score."""
    if len(pieces) == 1:
        return pieces[0]
    return track_from_frames(
        track_id=0,
        class_id=pieces[0].class_id,
        frames=np.concatenate([p.frames for p in pieces]),
        xyxy=np.concatenate([p.xyxy for p in pieces]),
        score=np.concatenate([p.score for p in pieces]),
    )
