"""Leak pictures: the frame a user should look at, cropped around the leaked object, masks tinted."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.video import first_frames, video_frame
from veil.evaluate.shots import VIEW_PX, leak_shot, save_leak_shots
from veil.evaluate.video import ObjectLeak, load_mot_labels


def _reddish(pixel: np.ndarray) -> bool:
    r, g, b = (int(v) for v in pixel)
    return r > g + 60 and r > b + 60


def test_a_shot_tints_what_is_hidden_and_outlines_the_label() -> None:
    rgb = np.full((80, 100, 3), 120, dtype=np.uint8)
    hidden = np.zeros((80, 100), dtype=bool)
    hidden[:, :50] = True
    shot = leak_shot(rgb, hidden, (40.0, 30.0, 60.0, 50.0))
    assert min(shot.shape[:2]) >= VIEW_PX
    zoom = shot.shape[1] // 100  # the crop is the whole (small) frame, enlarged
    assert _reddish(shot[10 * zoom, 10 * zoom])  # hidden: tinted
    assert shot[10 * zoom, 90 * zoom].tolist() == [120, 120, 120]  # shown: untouched
    corner = shot[30 * zoom, 40 * zoom]
    assert corner[1] > 200 and corner[0] < 100  # the label's box, in green


def test_each_leak_gets_the_middle_frame_of_its_longest_run(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "video-dev" / "clip06"
    clip = first_frames(source.with_suffix(".mp4"), tmp_path / "clip06.mp4", 40)
    labels = load_mot_labels(source.with_suffix(".gt.txt"))
    leak = ObjectLeak("face", 99, 24, 24, ((17, 40),), 101.0, core_hidden=0.0)
    plate = ObjectLeak("license_plate", 99, 1, 1, ((3, 3),), 20.0)  # no such plate: no picture
    asked: list[int] = []

    def hidden_at(index: int) -> np.ndarray:
        asked.append(index)
        return np.zeros((432, 768), dtype=bool)

    shots = save_leak_shots(
        clip, "clip 06/..", [leak, plate], labels, hidden_at=hidden_at, directory=tmp_path / "shots"
    )
    assert [p.name for p in shots] == ["clip_06_..-face-99-frame28.png"]  # a name safe as a file name
    assert shots[0].parent == tmp_path / "shots" and asked == [2, 27]
    picture = cv2.cvtColor(cv2.imread(str(shots[0])), cv2.COLOR_BGR2RGB)
    frame = video_frame(clip, 27)
    row = labels.rows_at(27)
    x1, y1, x2, y2 = labels.xyxy[row][labels.object_id[row] == 99][0]
    reach = max(x2 - x1, y2 - y1)  # one object size of context each side, clipped to the picture
    crop = frame[
        max(int(y1 - reach), 0) : int(np.ceil(y2 + reach)), max(int(x1 - reach), 0) : int(np.ceil(x2 + reach))
    ]
    zoom = picture.shape[0] // crop.shape[0]
    assert picture.shape[:2] == (crop.shape[0] * zoom, crop.shape[1] * zoom)
    diff = np.abs(picture[::zoom, ::zoom].astype(int) - crop.astype(int))
    assert diff.mean() < 2.0  # the frame's own pixels (nothing hidden), up to colour conversion
