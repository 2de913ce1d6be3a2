"""The video score on tiny synthetic clips: which boxes count, what masked means, leaks and runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from veil.detect import Detections
from veil.errors import SpecError
from veil.evaluate.video import (
    ClipScorer,
    MotLabels,
    ObjectLeak,
    VideoScore,
    core_covered,
    core_hidden_share,
    load_mot_labels,
    solid_fill_hidden,
)
from veil.redact import Fill
from veil.redact.coverage import hidden_mask

W, H = 64, 48


def _labels(rows: list[tuple[int, int, float, float, float, float, str, float]]) -> MotLabels:
    """Rows of (frame 0-based, id, x, y, w, h, category, visibility)."""
    return MotLabels(
        frame=np.array([r[0] for r in rows], dtype=np.int64),
        object_id=np.array([r[1] for r in rows], dtype=np.int64),
        xyxy=np.array([[r[2], r[3], r[2] + r[4], r[3] + r[5]] for r in rows], dtype=np.float32).reshape(
            -1, 4
        ),
        category=tuple(r[6] for r in rows),
        visibility=np.array([r[7] for r in rows], dtype=np.float32),
    )


def _hidden(*rects: tuple[int, int, int, int]) -> np.ndarray:
    out = np.zeros((H, W), dtype=bool)
    for x1, y1, x2, y2 in rects:
        out[y1:y2, x1:x2] = True
    return out


def _boxes(*xyxy: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(xyxy, dtype=np.float32).reshape(-1, 4)


def test_mot_labels_are_read_one_based_and_sorted_by_frame(tmp_path: Path) -> None:
    path = tmp_path / "clip.gt.txt"
    path.write_text("2,7,10,20,30,40,1,2,0.5\n1,3,0.5,1.5,16,18,1,1,1.0\n\n")
    labels = load_mot_labels(path)
    assert labels.frame.tolist() == [0, 1]
    assert labels.object_id.tolist() == [3, 7]
    assert labels.category == ("face", "license_plate")
    assert labels.xyxy.tolist() == [[0.5, 1.5, 16.5, 19.5], [10, 20, 40, 60]]
    assert labels.visibility.tolist() == [1.0, 0.5]
    assert labels.rows_at(1) == slice(1, 2)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1,1,0,0,10", "line 2 is not"),
        ("1,1,a,0,10,10,1,1,1", "line 2 is not"),
        ("1,1,0,0,10,10,1,3,1", "class 3 is not one of 1 \\(face\\), 2 \\(license_plate\\)"),
        ("0,1,0,0,10,10,1,1,1", "frame must be >= 1"),
    ],
)
def test_a_malformed_label_line_is_refused_by_number(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "clip.gt.txt"
    path.write_text(f"1,1,0,0,10,10,1,1,1\n{line}\n")
    with pytest.raises(SpecError, match=message):
        load_mot_labels(path)


def test_a_core_is_covered_only_when_every_core_pixel_is_hidden() -> None:
    box = _boxes((8, 8, 40, 40))  # core: pixels 16..31 in x and y
    assert core_covered(_hidden((16, 16, 32, 32)), box).tolist() == [True]
    assert core_covered(_hidden((16, 16, 32, 31)), box).tolist() == [False]  # one row short
    assert core_covered(_hidden((17, 16, 32, 32)), box).tolist() == [False]  # one column short
    assert core_covered(_hidden((0, 0, 8, 8)), box).tolist() == [False]


def test_the_core_of_a_box_cut_by_the_frame_edge_is_its_visible_part() -> None:
    box = _boxes((-20, 10, 20, 50))  # core x -10..10 -> visible pixels 0..9; y pixels 20..39
    assert core_covered(_hidden((0, 20, 10, 40)), box).tolist() == [True]
    assert core_covered(_hidden((1, 20, 10, 40)), box).tolist() == [False]


def test_an_ellipse_that_misses_a_core_corner_does_not_mask_the_box() -> None:
    """A tight detection (60 % of the face) masked by an ellipse leaves the core's corners showing;
    the same box as a rectangle covers them. Box-level scoring would call both masked."""
    label = _boxes((12, 4, 52, 44))
    tight = Detections(
        xyxy=_boxes((20, 12, 44, 36)), confidence=np.ones(1, np.float32), class_id=np.zeros(1, np.int64)
    )
    ellipse = hidden_mask(Fill(shape="ellipse", mask_scale=1.0), tight, resolution_wh=(W, H))
    rect = hidden_mask(Fill(shape="rect", mask_scale=1.0), tight, resolution_wh=(W, H))
    assert core_covered(ellipse, label).tolist() == [False]
    assert ellipse[24, 32] and not ellipse[14, 22]  # centre hidden, core corner showing
    assert core_covered(rect, label).tolist() == [True]
    grown = hidden_mask(Fill(shape="ellipse", mask_scale=1.5), tight, resolution_wh=(W, H))
    assert core_covered(grown, label).tolist() == [True]


def test_leaks_runs_and_recall_of_one_object() -> None:
    face = [(f, 1, 8.0, 8.0, 32.0, 32.0, "face", 1.0) for f in range(6)]
    scorer = ClipScorer(_labels(face), resolution_wh=(W, H))
    covered = _hidden((8, 8, 40, 40))
    for f, hidden in enumerate([True, False, False, True, False, True]):
        scorer.add_frame(f, covered if hidden else _hidden())
    score = scorer.result().categories["face"]
    assert (score.boxes, score.masked, score.objects, score.objects_leaked) == (6, 3, 1, 1)
    assert score.leaked_frames == 3 and score.longest_unmasked_run == 2
    assert score.recall == pytest.approx(0.5)


def test_small_and_mostly_outside_boxes_do_not_count() -> None:
    rows = [
        (0, 1, 8.0, 8.0, 11.0, 30.0, "face", 1.0),  # shorter side 11 px
        (0, 2, 30.0, 8.0, 20.0, 20.0, "face", 0.49),  # half outside
        (0, 3, 8.0, 8.0, 12.0, 12.0, "license_plate", 0.5),  # counts, unmasked
    ]
    scorer = ClipScorer(_labels(rows), resolution_wh=(W, H))
    scorer.add_frame(0, _hidden())
    score = scorer.result()
    assert score.categories["face"].boxes == 0 and score.categories["face"].recall == 1.0
    plate = score.categories["license_plate"]
    assert (plate.boxes, plate.masked, plate.objects_leaked, plate.longest_unmasked_run) == (1, 0, 1, 1)


def test_a_run_restarts_after_a_frame_where_the_box_does_not_count() -> None:
    rows = [(f, 1, 8.0, 8.0, 32.0, 32.0, "face", 0.2 if f == 2 else 1.0) for f in range(5)]
    scorer = ClipScorer(_labels(rows), resolution_wh=(W, H))
    for f in range(5):
        scorer.add_frame(f, _hidden())
    face = scorer.result().categories["face"]
    assert face.boxes == 4 and face.longest_unmasked_run == 2 and face.leaked_frames == 4


def test_each_leaked_object_says_which_frames_leaked_and_how_small_it_was() -> None:
    rows = [(f, 1, 8.0, 8.0, 32.0, 20.0, "face", 1.0) for f in range(6)]
    rows += [(f, 2, 40.0, 8.0, 16.0, 16.0, "face", 1.0) for f in range(6)]  # always masked
    rows.sort(key=lambda r: r[0])
    scorer = ClipScorer(_labels(rows), resolution_wh=(W, H))
    for f in range(6):
        over_face = (0, 0, W, H) if f in (0, 3) else (40, 0, W, H)
        scorer.add_frame(f, _hidden(over_face))
    score = scorer.result()
    assert [leak.to_dict() for leak in score.leaks] == [
        {
            "category": "face",
            "object_id": 1,
            "leaked_frames": 4,
            "counted_frames": 6,
            "longest_run": 2,
            "runs": [[2, 3], [5, 6]],  # 1-based frame numbers, as in gt.txt
            "min_side_px": 20.0,
            "core_hidden": 0.0,
        }
    ]
    assert score.to_dict()["leaks"] == [leak.to_dict() for leak in score.leaks]


def test_a_leak_says_how_much_of_its_core_a_mask_hid_and_which_frame_to_look_at() -> None:
    """A mask a little off the face (half its core hidden) reads differently from no mask at all."""
    rows = [(f, 1, 8.0, 8.0, 32.0, 32.0, "face", 1.0) for f in range(7)]
    scorer = ClipScorer(_labels(rows), resolution_wh=(W, H))
    for f in range(7):  # the core is x 16..32: hide its left half in frames 2-6, nothing in 0-1
        scorer.add_frame(f, _hidden((0, 0, 24, H)) if f >= 2 else _hidden())
    (leak,) = scorer.result().leaks
    assert leak.runs == ((1, 7),) and leak.core_hidden == pytest.approx(0.5)
    assert leak.worst_frame == 4  # the middle of the longest run, 1-based

    runs = ObjectLeak("face", 1, 6, 9, ((1, 2), (4, 7), (9, 9)), 20.0)
    assert runs.worst_frame == 5


def test_core_hidden_share_counts_the_core_pixels_under_a_mask() -> None:
    label = _boxes((8, 8, 40, 40), (100, 100, 120, 120))  # the second lies outside the picture
    shares = core_hidden_share(_hidden((0, 0, 20, H)), label)
    assert shares[0] == pytest.approx(0.25) and shares[1] == 0.0
    assert core_hidden_share(_hidden((0, 0, W, H)), label)[0] == 1.0


def test_frames_a_tool_never_delivered_count_as_unmasked() -> None:
    rows = [(f, 1, 8.0, 8.0, 32.0, 32.0, "face", 1.0) for f in range(4)]
    scorer = ClipScorer(_labels(rows), resolution_wh=(W, H))
    scorer.add_frame(0, _hidden((0, 0, W, H)))
    score = scorer.result()
    assert score.frames == 4
    assert score.categories["face"].masked == 1 and score.categories["face"].longest_unmasked_run == 3


def test_frames_must_come_in_order() -> None:
    scorer = ClipScorer(_labels([(0, 1, 8.0, 8.0, 32.0, 32.0, "face", 1.0)]), resolution_wh=(W, H))
    with pytest.raises(ValueError, match="expected 0, got 1"):
        scorer.add_frame(1, _hidden())


def test_false_mask_share_is_the_hidden_area_outside_every_label() -> None:
    rows = [(0, 1, 0.0, 0.0, 10.0, 10.0, "face", 1.0), (0, 2, 20.0, 0.0, 10.0, 10.0, "license_plate", 1.0)]
    scorer = ClipScorer(_labels(rows), resolution_wh=(W, H))
    face_mask = _hidden((0, 0, 10, 20))  # 100 px on the face label, 100 below it
    plate_mask = _hidden((20, 0, 30, 10))  # all on the plate label
    scorer.add_frame(0, face_mask | plate_mask, painted={"face": face_mask, "license_plate": plate_mask})
    shares = scorer.result().false_mask
    assert shares["face"].share == pytest.approx(0.5)
    assert shares["license_plate"].share == 0.0


def test_scores_of_clips_add_up() -> None:
    rows = [(0, 1, 8.0, 8.0, 32.0, 32.0, "face", 1.0)]
    total = VideoScore()
    for hidden in (_hidden((0, 0, W, H)), _hidden()):
        scorer = ClipScorer(_labels(rows), resolution_wh=(W, H))
        scorer.add_frame(0, hidden)
        total.add(scorer.result())
    face = total.categories["face"]
    assert (total.clips, total.frames, face.boxes, face.masked, face.objects, face.objects_leaked) == (
        2,
        2,
        2,
        1,
        2,
        1,
    )
    assert total.to_dict()["categories"]["face"]["recall"] == 0.5  # type: ignore[index]


def test_a_black_fill_is_found_by_its_pixels_but_an_untouched_dark_background_is_not() -> None:
    rng = np.random.default_rng(0)
    source = rng.integers(90, 200, size=(H, W, 3), dtype=np.uint8)
    source[:, 50:] = 5  # a dark background the tool leaves alone
    source[20, 20] = 3  # a dark pixel inside what will be filled
    source[30:40, 10:30] = 20  # a dark face, as in a night scene
    output = source.copy()
    output[10:40, 10:30] = rng.integers(0, 12, size=(30, 20, 3), dtype=np.uint8)  # x264-ish black
    output[:, 50:] += rng.integers(0, 3, size=(H, W - 50, 3), dtype=np.uint8)  # encoder noise
    hidden = solid_fill_hidden(source, output)
    assert hidden[10:40, 10:30].all()
    assert not hidden[:, 50:].any()
    assert not hidden[:, 31:50].any() and not hidden[:10].any() and not hidden[40:].any()
