"""The plate detector on real photos: labelled plates found, boxes in source pixels."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from tests.cores import ort_runtime
from tests.video import video_frame
from veil.boxes import box_iou_xyxy
from veil.detect.base import Detector
from veil.detect.models import ModelStore
from veil.detect.registry import build_detector
from veil.detect.runtime import RuntimeOptions
from veil.detect.yolov8.detector import YoloV8Config, YoloV8Detector, merge_nested
from veil.settings import Settings


@pytest.fixture(scope="module")
def detector(plate_onnx: Path) -> YoloV8Detector:
    return YoloV8Detector(YoloV8Config(), model_path=plate_onnx, runtime=ort_runtime(), class_id=7)


def test_is_a_detector(detector: YoloV8Detector) -> None:
    assert isinstance(detector, Detector)
    assert detector.model_name == "yolov8_plate"


def test_finds_the_labelled_plates(detector: YoloV8Detector, labelled_plates: list) -> None:
    for name, rgb, plate in labelled_plates:
        found = detector.detect(rgb)
        assert len(found), name
        assert box_iou_xyxy(found.xyxy, plate).max() >= 0.5, name
        assert (found.class_id == 7).all()
        assert (found.confidence >= detector.config.threshold).all()


def test_boxes_follow_the_plate_when_the_frame_is_padded(
    detector: YoloV8Detector, labelled_plates: list
) -> None:
    # Same photo placed inside a larger canvas: the box must move with it, in source pixels.
    _, rgb, plate = labelled_plates[0]
    canvas = np.full((rgb.shape[0] + 300, rgb.shape[1] + 500, 3), 90, np.uint8)
    canvas[300:, 500:] = rgb
    found = detector.detect(canvas)
    shifted = plate + np.array([500, 300, 500, 300], np.float32)
    assert box_iou_xyxy(found.xyxy, shifted).max() >= 0.5


def test_large_fisheye_frame_finds_the_front_plate(detector: YoloV8Detector, media_dir: Path) -> None:
    rgb = cv2.cvtColor(cv2.imread(str(media_dir / "plates_fisheye.png")), cv2.COLOR_BGR2RGB)
    found = detector.detect(np.ascontiguousarray(rgb))
    honda_front_plate = np.array(
        [[1392, 1105, 1490, 1212]], np.float32
    )  # marked by eye on the 2560x1920 still
    assert box_iou_xyxy(found.xyxy, honda_front_plate).max() >= 0.5
    assert (
        (found.xyxy >= 0).all()
        and (found.xyxy[:, [0, 2]] <= 2560).all()
        and (found.xyxy[:, [1, 3]] <= 1920).all()
    )


@pytest.mark.slow
def test_second_scale_and_rotation_find_small_and_tilted_plates(plate_onnx: Path, media_dir: Path) -> None:
    video = media_dir / "plates_fisheye_audio.mp4"
    runtime = ort_runtime()
    # Frame 2: a white SUV's front plate and a black SUV's rear plate, ~40-55 px wide in 2560 px;
    # at 640 alone they shrink to ~12 px and vanish.
    far = video_frame(video, 2)
    far_plates = np.array([[110, 953, 166, 988], [417, 832, 453, 859]], np.float32)
    single = YoloV8Detector(YoloV8Config(second_scale_imgsz=None), model_path=plate_onnx, runtime=runtime)
    two_scales = YoloV8Detector(YoloV8Config(), model_path=plate_onnx, runtime=runtime)
    assert box_iou_xyxy(single.detect(far).xyxy, far_plates).max(initial=0.0) < 0.3
    assert (box_iou_xyxy(two_scales.detect(far).xyxy, far_plates).max(axis=0) >= 0.5).all()
    # Frame 15: a rear plate tilted ~20 degrees by the fisheye; only the rotated pass sees it.
    tilted = video_frame(video, 15)
    tilted_plate = np.array(
        [[2280, 1182, 2427, 1325]], np.float32
    )  # upright bounds of the plate, marked by eye
    rotating = YoloV8Detector(YoloV8Config(rotations_deg=(-20, 20)), model_path=plate_onnx, runtime=runtime)
    assert box_iou_xyxy(two_scales.detect(tilted).xyxy, tilted_plate).max(initial=0.0) == 0.0
    assert box_iou_xyxy(rotating.detect(tilted).xyxy, tilted_plate).max() >= 0.5


def test_rotated_passes_do_not_duplicate_upright_plates(plate_onnx: Path, labelled_plates: list) -> None:
    rotating = YoloV8Detector(
        YoloV8Config(rotations_deg=(-20, 20)), model_path=plate_onnx, runtime=ort_runtime()
    )
    for name, rgb, plate in labelled_plates[:3]:
        overlaps = box_iou_xyxy(rotating.detect(rgb).xyxy, plate)[:, 0]
        assert (overlaps > 0).sum() == 1, name
        assert overlaps.max() >= 0.5, name


def test_blank_frame_has_no_plates(detector: YoloV8Detector) -> None:
    assert len(detector.detect(np.full((720, 1280, 3), 127, np.uint8))) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"imgsz": 650},  # not a multiple of 32
        {"imgsz": 64},
        {"threshold": 0.0},
        {"second_scale_imgsz": 640},  # not larger than imgsz
        {"classes": (-1,)},
        {"colour": "red"},  # unknown field
        {"type": "centerface"},
        {"rotations_deg": (60,)},
        {"rotations_deg": (0,)},
    ],
)
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValidationError):
        YoloV8Config(**bad)


def test_non_rgb_frames_are_refused(detector: YoloV8Detector) -> None:
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((10, 10), np.uint8))


def test_a_lower_threshold_never_lowers_a_plates_score(media_dir: Path) -> None:
    """Video detects at half the threshold and splits strong from weak boxes by score. A tilted pass's
    confident box must not be swapped for a faint upright box of the same plate (a plate in frame 17 of
    the fisheye clip was lost that way: weak boxes only extend existing tracks)."""
    store = ModelStore(Settings().model_dir)
    runtime = RuntimeOptions.from_settings(Settings())
    default = build_detector("license_plate", store=store, runtime=runtime, mode="video")
    low = build_detector(
        "license_plate", store=store, runtime=runtime, mode="video", threshold=default.config.threshold / 2
    )
    checked = 0
    with av.open(str(media_dir / "plates_fisheye_audio.mp4")) as container:
        for frame in container.decode(video=0):
            rgb = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
            strong, faint = default.detect(rgb), low.detect(rgb)
            for box, score in zip(strong.xyxy, strong.confidence, strict=True):
                same = box_iou_xyxy(box[None], faint.xyxy)[0] >= 0.5
                assert same.any() and faint.confidence[same].max() >= score
                checked += 1
    assert checked >= 24


def test_nested_boxes_of_one_plate_become_one_box() -> None:
    plate, frame = [100, 100, 200, 140], [92, 94, 210, 150]  # the plate, and the plate with its frame
    xyxy = np.array([plate, frame, [300, 100, 400, 140]], np.float32)
    merged, scores = merge_nested(xyxy, np.array([0.6, 0.8, 0.7], np.float32))
    assert merged.tolist() == [frame, [300, 100, 400, 140]]  # the better box of the plate, as it was
    assert scores.tolist() == pytest.approx([0.8, 0.7])


def test_a_plate_inside_a_much_larger_box_is_not_merged_into_it() -> None:
    # A bumper or car scored as a plate is another object: merging would grow the plate's box to it.
    xyxy = np.array([[100, 100, 200, 140], [50, 60, 350, 260]], np.float32)
    merged, _ = merge_nested(xyxy, np.array([0.8, 0.3], np.float32))
    assert len(merged) == 2
