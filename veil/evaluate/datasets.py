"""Labelled image sets in the formats public face and plate benchmarks ship in.

Every loader returns the same thing, a list of ``Sample`` (an image path and
its ground-truth boxes as xyxy pixels of the stored image), so the metrics
never care where the labels came from. All boxes in a file count, whatever
their class: a dev set is chosen per category (faces-dev labels three kinds of
face; openalpr labels plates).

Formats (directories are searched recursively, so a set laid out as
``images/`` + ``annotations/`` can be given by its parent for both):

* ``voc``: one Pascal VOC XML per image; ``<filename>`` names the image.
* ``yolo``: ``<stem>.txt`` per image, lines ``class cx cy w h`` normalised to
  0..1; an image without a label file has no boxes (YOLO's convention).
* ``coco``: one COCO JSON (``images``, ``annotations`` with ``bbox`` = x, y, w, h);
  ``labels_dir`` may be the JSON file itself.
* ``openalpr``: ``<name>.txt`` lines ``file x y w h text`` (openalpr/benchmarks).
* ``ccpd``: no label files; the box is the third ``-`` field of the file name,
  ``x1&y1_x2&y2``. ``labels_dir`` is ignored.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
from PIL import Image

from veil.errors import SpecError

__all__ = ["DATASET_FORMATS", "DatasetFormat", "Sample", "load_dataset"]

DatasetFormat = Literal["voc", "yolo", "coco", "openalpr", "ccpd"]
DATASET_FORMATS: tuple[str, ...] = get_args(DatasetFormat)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Sample:
    """One labelled image: ``boxes_xyxy`` (N, 4) float32 in stored-orientation pixels."""

    image_path: Path
    boxes_xyxy: npt.NDArray[np.float32]


def _boxes(rows: list[list[float]]) -> npt.NDArray[np.float32]:
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


def _xywh_rows(rows: list[list[float]]) -> list[list[float]]:
    return [[x, y, x + w, y + h] for x, y, w, h in rows]


class _ImageIndex:
    """Every image under a directory, by file name and by stem (first in sorted order wins)."""

    def __init__(self, images_dir: Path) -> None:
        found = sorted(images_dir.rglob("*"))
        self.paths = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
        self.by_name: dict[str, Path] = {}
        self.by_stem: dict[str, Path] = {}
        for path in self.paths:
            self.by_name.setdefault(path.name, path)
            self.by_stem.setdefault(path.stem, path)

    def find(self, name: str) -> Path | None:
        """The image called ``name``, or else one with the same stem (labels often drop or
        change the extension)."""
        base = Path(name).name
        return self.by_name.get(base) or self.by_stem.get(Path(base).stem)


def _bad(fmt: str, path: Path, what: str) -> SpecError:
    return SpecError(f"{fmt} label file {path.name} is malformed: {what}")


def _load_voc(images_dir: Path, labels_dir: Path) -> list[Sample]:
    images = _ImageIndex(images_dir)
    samples: list[Sample] = []
    for xml_path in sorted(labels_dir.rglob("*.xml")):
        try:
            root = ET.parse(xml_path).getroot()
            rows = [
                [float(obj.findtext(f"bndbox/{k}", "")) for k in ("xmin", "ymin", "xmax", "ymax")]
                for obj in root.iter("object")
            ]
        except (ET.ParseError, ValueError) as exc:
            raise _bad("voc", xml_path, "not Pascal VOC XML with numeric bndbox values") from exc
        name = root.findtext("filename", "") or xml_path.stem
        image = images.find(name) or images.find(xml_path.stem)
        if image is not None:
            samples.append(Sample(image, _boxes(rows)))
    return samples


def _load_yolo(images_dir: Path, labels_dir: Path) -> list[Sample]:
    labels = {p.stem: p for p in sorted(labels_dir.rglob("*.txt"))}
    samples: list[Sample] = []
    for image in _ImageIndex(images_dir).paths:
        rows: list[list[float]] = []
        label = labels.get(image.stem)
        if label is not None:
            with Image.open(image) as im:
                w, h = im.size
            try:
                for line in label.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        _, cx, cy, bw, bh = (float(v) for v in line.split()[:5])
                        x1, y1 = (cx - bw / 2) * w, (cy - bh / 2) * h
                        rows.append([x1, y1, x1 + bw * w, y1 + bh * h])
            except ValueError as exc:
                raise _bad("yolo", label, "expected lines `class cx cy w h`") from exc
        samples.append(Sample(image, _boxes(rows)))
    return samples


def _load_coco(images_dir: Path, labels_dir: Path) -> list[Sample]:
    files = [labels_dir] if labels_dir.is_file() else sorted(labels_dir.rglob("*.json"))
    if len(files) != 1:
        raise SpecError(f"coco needs exactly one JSON file in the labels directory, found {len(files)}")
    try:
        data = json.loads(files[0].read_text(encoding="utf-8"))
        by_id: dict[int, list[list[float]]] = {int(im["id"]): [] for im in data["images"]}
        for ann in data.get("annotations", []):
            by_id.setdefault(int(ann["image_id"]), []).append([float(v) for v in ann["bbox"]])
        names = {int(im["id"]): str(im["file_name"]) for im in data["images"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise _bad("coco", files[0], "expected `images` and `annotations` with `bbox`") from exc
    images = _ImageIndex(images_dir)
    samples: list[Sample] = []
    for image_id, name in sorted(names.items()):
        image = images.find(name)
        if image is not None:
            samples.append(Sample(image, _boxes(_xywh_rows(by_id.get(image_id, [])))))
    return samples


def _load_openalpr(images_dir: Path, labels_dir: Path) -> list[Sample]:
    images = _ImageIndex(images_dir)
    rows_by_image: dict[str, list[list[float]]] = {}
    for label in sorted(labels_dir.rglob("*.txt")):
        try:
            for line in label.read_text(encoding="utf-8").splitlines():
                fields = line.split()
                if fields:
                    rows_by_image.setdefault(fields[0], []).append([float(v) for v in fields[1:5]])
        except ValueError as exc:
            raise _bad("openalpr", label, "expected lines `file x y w h text`") from exc
    samples: list[Sample] = []
    for name, rows in sorted(rows_by_image.items()):
        image = images.find(name)
        if image is not None:
            samples.append(Sample(image, _boxes(_xywh_rows(rows))))
    return samples


def _load_ccpd(images_dir: Path, labels_dir: Path) -> list[Sample]:
    samples: list[Sample] = []
    for image in _ImageIndex(images_dir).paths:
        try:
            corner_a, corner_b = image.stem.split("-")[2].split("_")
            row = [float(v) for v in (*corner_a.split("&"), *corner_b.split("&"))]
        except (IndexError, ValueError) as exc:
            raise SpecError(f"ccpd file name {image.name} has no `x1&y1_x2&y2` third field") from exc
        if len(row) != 4:
            raise SpecError(f"ccpd file name {image.name} has no `x1&y1_x2&y2` third field")
        samples.append(Sample(image, _boxes([row])))
    return samples


_LOADERS: dict[str, Callable[[Path, Path], list[Sample]]] = {
    "voc": _load_voc,
    "yolo": _load_yolo,
    "coco": _load_coco,
    "openalpr": _load_openalpr,
    "ccpd": _load_ccpd,
}


def load_dataset(*, images_dir: Path, labels_dir: Path, fmt: DatasetFormat) -> list[Sample]:
    """Every labelled image of a set, sorted by path. Raises SpecError for an unknown format,
    a missing directory, malformed labels, or a set with no labelled image."""
    loader = _LOADERS.get(fmt)
    if loader is None:
        raise SpecError(f"unknown dataset format {fmt!r}; known: {', '.join(DATASET_FORMATS)}")
    for what, path in (("images", images_dir), ("labels", labels_dir)):
        if not path.exists():
            raise SpecError(f"{what} path {path} does not exist")
    samples = sorted(loader(Path(images_dir), Path(labels_dir)), key=lambda s: s.image_path)
    if not samples:
        raise SpecError(f"no labelled images found for format {fmt!r}")
    return samples
