"""Plate and code boxes give way to faces: a box swallowing a face is dropped, a plate beside one is kept."""

from __future__ import annotations

import numpy as np

from veil.detect.face_overlap import drop_boxes_over_faces
from veil.detections import Detections

CATEGORIES = ("face", "license_plate", "barcode", "tattoo")  # tattoo: a custom YOLOv8 category
FACE, PLATE, BARCODE, CUSTOM = range(4)


def _dets(*rows: tuple[int, list[float]]) -> Detections:
    return Detections(
        xyxy=np.array([box for _, box in rows], np.float32).reshape(-1, 4),
        confidence=np.full(len(rows), 0.9, np.float32),
        class_id=np.array([cls for cls, _ in rows], np.int64),
    )


def test_a_plate_box_over_a_face_is_dropped_and_the_face_kept() -> None:
    found = _dets((FACE, [100, 100, 160, 170]), (PLATE, [90, 120, 170, 180]), (BARCODE, [95, 95, 165, 175]))
    kept = drop_boxes_over_faces(found, CATEGORIES, faces=found)
    assert kept.class_id.tolist() == [FACE]
    assert kept.xyxy.tolist() == [[100, 100, 160, 170]]


def test_a_plate_box_inside_a_face_is_dropped() -> None:
    found = _dets((FACE, [100, 100, 200, 220]), (PLATE, [120, 180, 170, 200]))  # "plate" on a mouth mask
    assert drop_boxes_over_faces(found, CATEGORIES, faces=found).class_id.tolist() == [FACE]


def test_a_plate_beside_a_face_or_over_its_edge_is_kept() -> None:
    found = _dets(
        (FACE, [100, 100, 160, 170]),
        (PLATE, [170, 140, 260, 170]),  # beside it
        (PLATE, [140, 150, 240, 190]),  # over the chin: covers a small part of the face
    )
    assert len(drop_boxes_over_faces(found, CATEGORIES, faces=found)) == 3


def test_custom_categories_and_runs_without_faces_are_left_alone() -> None:
    found = _dets((FACE, [100, 100, 160, 170]), (CUSTOM, [90, 90, 170, 180]))
    assert drop_boxes_over_faces(found, CATEGORIES, faces=found) is found
    plates = _dets((0, [90, 90, 170, 180]))
    assert drop_boxes_over_faces(plates, ("license_plate",), faces=plates) is plates


def test_weak_candidates_are_checked_against_the_masked_faces() -> None:
    masked = _dets((FACE, [100, 100, 160, 170]))
    weak = _dets((PLATE, [95, 100, 165, 175]), (PLATE, [400, 400, 480, 430]))
    kept = drop_boxes_over_faces(weak, CATEGORIES, faces=masked)
    assert kept.xyxy.tolist() == [[400, 400, 480, 430]]
