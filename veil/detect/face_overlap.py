"""Keep plate and code boxes off faces: where categories meet, a face wins.

Why: a licence plate is a flat plate that hides whatever is behind it, and a QR code
or barcode is printed on something flat, so no face can be seen inside one. A plate
or code box that swallows a face is a false detection of that face. Left in place it
also defeats the review loop: a user who excludes a face's track (a false face, or
someone who agreed to be shown) would still see the face masked, under the plate box.

``drop_boxes_over_faces`` is a pure post-filter over one frame's detections of every
category: it drops each plate, QR-code or barcode box that covers at least half of a
face box, or that lies mostly inside one (then the face's own mask covers it anyway).
A plate beside a face, or overlapping its edge, is kept: a missed plate is a leak.
Custom YOLOv8 categories are left alone, as a user's "person" or "head" model may
rightly cover faces.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from veil.detections import Detections

__all__ = ["FACE_CATEGORY", "YIELDING_CATEGORIES", "drop_boxes_over_faces"]

FACE_CATEGORY = "face"
YIELDING_CATEGORIES = frozenset({"license_plate", "qr_code", "barcode"})
"""Categories whose boxes give way to faces."""

_FACE_COVERED = 0.5
"""A box covering at least this share of a face box's area swallows the face."""
_BOX_INSIDE = 0.8
"""A box with at least this share of its own area inside a face box is part of the face."""


def drop_boxes_over_faces(found: Detections, categories: Sequence[str], *, faces: Detections) -> Detections:
    """``found`` without the yielding boxes that overlap a face of ``faces``.

    ``class_id`` in both indexes ``categories``; only the face boxes of ``faces`` count
    (pass the boxes that will be masked, not weak candidates). Returns ``found`` itself
    when nothing is dropped.
    """
    if FACE_CATEGORY not in categories or len(found) == 0:
        return found
    face_boxes = faces.xyxy[faces.class_id == categories.index(FACE_CATEGORY)]
    yielding_ids = [i for i, name in enumerate(categories) if name in YIELDING_CATEGORIES]
    candidates = np.flatnonzero(np.isin(found.class_id, yielding_ids))
    if len(face_boxes) == 0 or len(candidates) == 0:
        return found
    boxes = found.xyxy[candidates]
    lt = np.maximum(boxes[:, None, :2], face_boxes[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], face_boxes[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    box_area = np.maximum((boxes[:, 2:] - boxes[:, :2]).prod(axis=1), 1e-9)
    face_area = np.maximum((face_boxes[:, 2:] - face_boxes[:, :2]).prod(axis=1), 1e-9)
    over = (inter >= _FACE_COVERED * face_area[None, :]) | (inter >= _BOX_INSIDE * box_area[:, None])
    dropped = candidates[over.any(axis=1)]
    if len(dropped) == 0:
        return found
    keep = np.ones(len(found), dtype=bool)
    keep[dropped] = False
    return found[keep]
