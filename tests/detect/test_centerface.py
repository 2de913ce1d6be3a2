"""CenterFace on real photos: faces found where the labels are, boxes in source pixels
whatever the working scale, tiles that neither lose nor double faces, and clear errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.cores import ort_runtime
from tests.video import video_frame
from veil.boxes import box_iou_xyxy
from veil.detect import Detector
from veil.detect.centerface import CenterFace, CenterFaceConfig
from veil.detect.models import ModelStore
from veil.errors import ModelCorrupt
from veil.evaluate.metrics import MatchCounts, match_greedy
from veil.settings import Settings

RUNTIME = ort_runtime()


@pytest.fixture(scope="module")
def model_path() -> Path:
    """The real model cache (`make test` pulls it first; pulling again is a no-op)."""
    store = ModelStore(Settings().model_dir)
    store.pull(["centerface"])
    return store.path("centerface")


@pytest.fixture(scope="module")
def image_detector(model_path: Path) -> CenterFace:
    return CenterFace(CenterFaceConfig(), model_path=model_path, runtime=RUNTIME, class_id=3)


def _rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    assert bgr is not None, path
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


@pytest.fixture(scope="module")
def crowd(media_dir: Path) -> np.ndarray:
    return _rgb(media_dir / "city_crowd.jpg")


def _video(model_path: Path, **kwargs: object) -> CenterFace:
    return CenterFace(CenterFaceConfig(mode="video", **kwargs), model_path=model_path, runtime=RUNTIME)


def test_is_a_detector(image_detector: CenterFace) -> None:
    assert isinstance(image_detector, Detector)
    assert image_detector.model_name == "centerface"


def test_finds_the_labelled_faces_of_street_photos(image_detector: CenterFace, shared_data: Path) -> None:
    root = shared_data / "faces-dev"
    counts = MatchCounts()
    for xml_path in sorted((root / "annotations").glob("*.xml"))[:6]:
        xml = ET.parse(xml_path).getroot()
        corners = ("xmin", "ymin", "xmax", "ymax")
        rows = [[float(o.findtext(f"bndbox/{k}", "")) for k in corners] for o in xml.iter("object")]
        labels = np.array(rows, dtype=np.float32)
        found = image_detector.detect(_rgb(root / "images" / xml.findtext("filename", "")))
        assert set(found.class_id.tolist()) <= {3}
        counts += match_greedy(found.xyxy, found.confidence, labels, iou_threshold=0.3)
    assert counts.recall >= 0.85, counts
    assert counts.precision >= 0.6, counts


def test_boxes_are_in_source_pixels_at_any_working_scale(model_path: Path, crowd: np.ndarray) -> None:
    h, w = crowd.shape[:2]  # 800 x 564: not a multiple of 32, so the frame is padded
    native = _video(model_path, input_long_side=w).detect(crowd)
    upscaled = _video(model_path, input_long_side=2 * w).detect(crowd)
    assert len(native) >= 10
    ious = box_iou_xyxy(native.xyxy, upscaled.xyxy)
    assert np.median(ious.max(axis=1)) >= 0.6
    assert upscaled.xyxy[:, [0, 2]].max() <= w and upscaled.xyxy[:, [1, 3]].max() <= h


def test_mirrored_frame_gives_mirrored_boxes(model_path: Path, crowd: np.ndarray) -> None:
    """No stretching or off-by-padding shift: the padding sits right/bottom only, yet boxes mirror."""
    det = _video(model_path, input_long_side=800)
    w = crowd.shape[1]
    plain = det.detect(crowd)
    flipped = det.detect(np.ascontiguousarray(crowd[:, ::-1]))
    mirrored = flipped.xyxy.copy()
    mirrored[:, [0, 2]] = w - flipped.xyxy[:, [2, 0]]
    ious = box_iou_xyxy(plain.xyxy, mirrored)
    assert np.median(ious.max(axis=1)) >= 0.7


def test_lower_video_resolution_loses_small_faces(model_path: Path, crowd: np.ndarray) -> None:
    coarse = _video(model_path, input_long_side=320).detect(crowd)
    fine = _video(model_path, input_long_side=1280).detect(crowd)
    assert len(fine) > len(coarse)


def test_the_coarse_video_pass_finds_a_large_face_the_main_pass_misses(
    model_path: Path, shared_data: Path
) -> None:
    """video-dev clip01, frame 181: a 240 px face (half covered by a mask) that the 960 px pass does
    not see at all; the 480 px pass finds it."""
    frame = video_frame(shared_data / "video-dev" / "clip01.mp4", 180)
    label = np.array([[309.1, 188.4, 548.6, 432.0]], dtype=np.float32)
    main_only = _video(model_path, coarse_long_side=None).detect(frame)
    both = _video(model_path).detect(frame)
    assert not len(main_only) or box_iou_xyxy(label, main_only.xyxy).max() < 0.3
    assert box_iou_xyxy(label, both.xyxy).max() >= 0.7


def test_tiles_neither_lose_nor_double_faces(model_path: Path, crowd: np.ndarray) -> None:
    whole = CenterFace(CenterFaceConfig(image_scales=(1.0,)), model_path=model_path, runtime=RUNTIME)
    config = CenterFaceConfig(image_scales=(1.0,), tile_size=256, tile_overlap=96, untiled_max_side=256)
    tiled = CenterFace(config, model_path=model_path, runtime=RUNTIME)
    reference = whole.detect(crowd)
    found = tiled.detect(crowd)  # 4 x 3 tiles plus an overview pass
    assert len(reference) >= 10
    assert (box_iou_xyxy(reference.xyxy, found.xyxy).max(axis=1) >= 0.5).all()
    # Partial views of faces cut by tile edges, if kept, add 5 boxes here.
    assert abs(len(found) - len(reference)) <= 2


def test_calibration_moves_boxes_down_and_can_be_switched_off(model_path: Path, crowd: np.ndarray) -> None:
    raw = _video(model_path, input_long_side=800, box_scale_wh=(1.0, 1.0), box_shift_y=0.0).detect(crowd)
    tuned = _video(model_path, input_long_side=800).detect(crowd)
    assert len(raw) == len(tuned)
    raw_h = raw.xyxy[:, 3] - raw.xyxy[:, 1]
    shift = ((tuned.xyxy[:, 1] + tuned.xyxy[:, 3]) - (raw.xyxy[:, 1] + raw.xyxy[:, 3])) / 2
    inside = (tuned.xyxy[:, 3] < crowd.shape[0] - 1) & (raw.xyxy[:, 1] > 0)
    assert np.allclose(shift[inside], 0.12 * raw_h[inside], atol=0.5)


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 5, 3), (32, 2000, 3)])
def test_blank_and_odd_sized_frames_give_no_faces(image_detector: CenterFace, shape: tuple[int, ...]) -> None:
    found = image_detector.detect(np.zeros(shape, dtype=np.uint8))
    assert len(found) == 0
    assert found.xyxy.shape == (0, 4)


@pytest.mark.parametrize(
    "frame",
    [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8), np.zeros((10, 10, 3), np.float32)],
)
def test_rejects_frames_that_are_not_rgb_uint8(image_detector: CenterFace, frame: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        image_detector.detect(frame)


def test_corrupt_model_file_names_the_fix(tmp_path: Path) -> None:
    bad = tmp_path / "centerface.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(ModelCorrupt, match="veil models pull"):
        CenterFace(CenterFaceConfig(), model_path=bad, runtime=RUNTIME)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("threshold", 0.0),
        ("image_scales", (0.0,)),
        ("image_scales", ()),
        ("tile_overlap", 700),
        ("box_scale_wh", (3.0, 1.0)),
        ("unknown_field", 1),
    ],
)
def test_config_rejects_out_of_range_values(field: str, value: object) -> None:
    with pytest.raises(ValueError):
        CenterFaceConfig.model_validate({field: value})


def test_the_runtime_model_holds_its_weights_as_constants_and_scores_as_the_pinned_one(
    model_path: Path, crowd: np.ndarray
) -> None:
    """The pinned file lists its weights among the graph inputs too, which stops onnxruntime from
    folding batch norms and fusing activations (2.5x the CPU). The model Veil runs has one input,
    the image, and gives the pinned graph's outputs."""
    import onnx
    import onnxruntime as ort

    from veil.detect.centerface import dynamic_model_bytes, runtime_model_bytes

    runtime = runtime_model_bytes(model_path)
    assert [i.name for i in onnx.load_from_string(runtime).graph.input] == ["input.1"]
    image = cv2.resize(crowd, (640, 384)).transpose(2, 0, 1)[None].astype(np.float32)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the pinned graph's warning about its weights, 194 times
    pinned, folded = (
        ort.InferenceSession(model, options, providers=["CPUExecutionProvider"]).run(None, {"input.1": image})
        for model in (dynamic_model_bytes(model_path), runtime)
    )
    for a, b in zip(pinned, folded, strict=True):
        assert a.shape == b.shape and float(np.abs(a - b).max()) < 1e-3
