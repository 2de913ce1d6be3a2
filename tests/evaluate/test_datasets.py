"""Loaders for each label format, read from the shared dev sets (or labels derived from them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from veil.errors import SpecError
from veil.evaluate.datasets import load_dataset


def test_voc_faces_dev_from_its_parent_directory(faces_dev: Path) -> None:
    samples = load_dataset(images_dir=faces_dev, labels_dir=faces_dev, fmt="voc")
    assert len(samples) == 150
    assert sum(len(s.boxes_xyxy) for s in samples) == 685
    first = next(s for s in samples if s.image_path.name == "maksssksksss0.jpg")
    assert first.boxes_xyxy.tolist()[0] == [79, 105, 109, 142]


def test_openalpr_one_plate_per_image(shared_data: Path) -> None:
    alpr = shared_data / "plates-dev" / "openalpr-eu"
    samples = load_dataset(images_dir=alpr, labels_dir=alpr, fmt="openalpr")
    assert len(samples) == 108
    eu1 = next(s for s in samples if s.image_path.name == "eu1.jpg")
    assert eu1.boxes_xyxy.tolist() == [[396, 340, 599, 386]]  # x y w h = 396 340 203 46


def test_ccpd_boxes_come_from_file_names(shared_data: Path, tmp_path: Path) -> None:
    ccpd = shared_data / "plates-dev" / "ccpd"
    samples = load_dataset(images_dir=ccpd, labels_dir=tmp_path, fmt="ccpd")
    assert len(samples) == 16
    first = next(s for s in samples if s.image_path.name.startswith("00622964559386-"))
    assert first.boxes_xyxy.tolist() == [[226, 433, 358, 500]]


def _first_voc(faces_dev: Path, n: int = 5) -> list[tuple[Path, np.ndarray]]:
    samples = load_dataset(images_dir=faces_dev, labels_dir=faces_dev, fmt="voc")[:n]
    return [(s.image_path, s.boxes_xyxy) for s in samples]


def test_yolo_labels_match_the_voc_ones(faces_dev: Path, tmp_path: Path) -> None:
    voc = _first_voc(faces_dev)
    for image, boxes in voc:
        with Image.open(image) as im:
            w, h = im.size
        lines = [
            f"0 {(x1 + x2) / 2 / w} {(y1 + y2) / 2 / h} {(x2 - x1) / w} {(y2 - y1) / h}"
            for x1, y1, x2, y2 in boxes
        ]
        (tmp_path / f"{image.stem}.txt").write_text("\n".join(lines) + "\n")
    # images_dir also holds unlabelled images: YOLO counts them as having no faces
    samples = {
        s.image_path: s.boxes_xyxy
        for s in load_dataset(images_dir=faces_dev, labels_dir=tmp_path, fmt="yolo")
    }
    assert len(samples) == 150
    for image, boxes in voc:
        np.testing.assert_allclose(samples[image], boxes, atol=1e-3)
    assert sum(len(b) for b in samples.values()) == sum(len(b) for _, b in voc)


def test_coco_labels_match_the_voc_ones(faces_dev: Path, tmp_path: Path) -> None:
    voc = _first_voc(faces_dev)
    doc = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "face"}]}
    for i, (image, boxes) in enumerate(voc):
        doc["images"].append({"id": i, "file_name": image.name})
        for x1, y1, x2, y2 in boxes.tolist():
            doc["annotations"].append(
                {"id": len(doc["annotations"]), "image_id": i, "bbox": [x1, y1, x2 - x1, y2 - y1]}
            )
    labels = tmp_path / "instances.json"
    labels.write_text(json.dumps(doc))
    samples = load_dataset(images_dir=faces_dev, labels_dir=labels, fmt="coco")
    assert [(s.image_path, s.boxes_xyxy.tolist()) for s in samples] == [(p, b.tolist()) for p, b in voc]


@pytest.mark.parametrize(
    ("fmt", "file_name", "content", "message"),
    [
        ("voc", "a.xml", "<annotation><object><bndbox><xmin>x</xmin></bndbox></object>", "malformed"),
        ("openalpr", "a.txt", "a.jpg ten 20 30 40 AB123", "malformed"),
        ("coco", "a.json", '{"images": 3}', "malformed"),
        ("voc", "unrelated.txt", "", "no labelled images"),
    ],
)
def test_bad_label_sets_are_spec_errors(
    faces_dev: Path, tmp_path: Path, fmt: str, file_name: str, content: str, message: str
) -> None:
    (tmp_path / file_name).write_text(content)
    with pytest.raises(SpecError, match=message):
        load_dataset(images_dir=faces_dev / "images", labels_dir=tmp_path, fmt=fmt)  # type: ignore[arg-type]


def test_missing_directory_and_unknown_format(faces_dev: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_dataset(images_dir=tmp_path / "nope", labels_dir=faces_dev, fmt="voc")
    with pytest.raises(SpecError, match="unknown dataset format"):
        load_dataset(images_dir=faces_dev, labels_dir=faces_dev, fmt="kitti")  # type: ignore[arg-type]
