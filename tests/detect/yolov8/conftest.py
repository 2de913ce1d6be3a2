"""Fixtures for the YOLOv8 tests: the pulled plate checkpoint, its converted
ONNX, labelled plates from plates-dev, and hostile checkpoint files."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from veil.detect.models import ModelStore
from veil.detect.yolov8.provision import plate_model_path
from veil.settings import Settings


@pytest.fixture(scope="session")
def model_store() -> ModelStore:
    """The real model cache (filled by `veil models pull`); read-only in tests except derived/."""
    return ModelStore(Settings().model_dir)


@pytest.fixture(scope="session")
def plate_pt(model_store: ModelStore) -> Path:
    return model_store.path("plate_yolov8_pt")


@pytest.fixture(scope="session")
def plate_onnx(model_store: ModelStore) -> Path:
    return plate_model_path(model_store)


def _rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path))
    assert bgr is not None, path
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


LabelledImage = tuple[str, np.ndarray, np.ndarray]


@pytest.fixture(scope="session")
def labelled_plates(shared_data: Path) -> list[LabelledImage]:
    """A handful of plates-dev images with their one labelled plate (xyxy)."""
    out: list[LabelledImage] = []
    alpr = shared_data / "plates-dev" / "openalpr-eu"
    for txt in sorted(alpr.glob("*.txt"))[:4]:
        name, x, y, w, h = txt.read_text().split()[:5]
        box = np.array([[float(x), float(y), float(x) + float(w), float(y) + float(h)]], np.float32)
        out.append((name, _rgb(alpr / name), box))
    for img in sorted((shared_data / "plates-dev" / "ccpd").glob("*.jpg"))[:2]:
        a, b = img.name.split("-")[2].split("_")
        box = np.array([[*map(float, a.split("&")), *map(float, b.split("&"))]], np.float32)
        out.append((img.name, _rgb(img), box))
    return out


@pytest.fixture
def hostile_pt(tmp_path: Path) -> Callable[[bytes], Path]:
    """Write a torch-style zip checkpoint whose data.pkl is the given pickle bytes."""

    def make(pickle_bytes: bytes) -> Path:
        path = tmp_path / "hostile.pt"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("archive/data.pkl", pickle_bytes)
            zf.writestr("archive/byteorder", "little")
            zf.writestr("archive/version", "3\n")
        return path

    return make


@pytest.fixture
def payload_marker(tmp_path: Path) -> Path:
    """The file a hostile pickle tries to create; it must never exist."""
    return tmp_path / "pwned"


@pytest.fixture
def hostile_pickles(payload_marker: Path) -> dict[str, bytes]:
    """Pickles that would run code or load unknown classes if unpickled naively."""
    cmd = f"touch {payload_marker}".encode()
    return {
        # protocol 0: GLOBAL os.system, MARK, unicode arg, TUPLE, REDUCE
        "os.system": b"cos\nsystem\n(V" + cmd + b"\ntR.",
        "posix.system": b"cposix\nsystem\n(V" + cmd + b"\ntR.",
        "builtins.eval": b"cbuiltins\neval\n(V__import__('os').system('" + cmd + b"')\ntR.",
        "subprocess.Popen": b"csubprocess\nPopen\n((V/bin/sh\nV-c\nV" + cmd + b"\nltR.",
        # protocol 2, hidden one level down in an otherwise plausible checkpoint dict
        "nested os.system": b"\x80\x02}(X\x05\x00\x00\x00epochJ\xff\xff\xff\xffX\x05\x00\x00\x00model"
        + b"cos\nsystem\nX"
        + len(cmd).to_bytes(4, "little")
        + cmd
        + b"\x85Ru.",
        # an unknown class, even one that would be harmless
        "unknown class": b"\x80\x02cevilpkg.payload\nGadget\n)\x81}b.",
        "unknown ultralytics class": b"\x80\x02cultralytics.nn.modules\nSegmentEvil\n)\x81}b.",
    }
