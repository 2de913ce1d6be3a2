"""Camera motion between frames, and tracks that coast with it (``veil.track.motion``)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from veil.track import CameraPath, MotionEstimator, Track, finalize_tracks
from veil.track.tracks import COAST_FRAMES, WEAK_COAST_FRAMES


def _scene(seed: int, size: tuple[int, int] = (480, 360)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, size=(size[1] // 8, size[0] // 8), dtype=np.uint8)
    import cv2

    return np.asarray(cv2.resize(small, size, interpolation=cv2.INTER_CUBIC), dtype=np.uint8)


def _pan(scene: np.ndarray, shifts: list[int], width: int = 320, height: int = 180) -> list[np.ndarray]:
    return [np.ascontiguousarray(scene[40 : 40 + height, x : x + width]) for x in shifts]


def test_a_pan_is_measured_and_a_cut_is_unknown() -> None:
    frames = _pan(_scene(1), [100, 96, 90, 82]) + _pan(_scene(2), [50])
    estimator = MotionEstimator((640, 360))  # source frames twice the grey copies' size
    for gray in frames:
        estimator.add(gray)
    motions = estimator.motions
    assert motions[0] is None and motions[4] is None  # first frame, then a cut to another scene
    shifts = [float(m[0, 2]) for m in motions[1:4] if m is not None]
    assert np.allclose(shifts, [8.0, 12.0, 16.0], atol=1.0)  # the picture moves right, x2 in source px
    path = CameraPath.from_motions(motions)
    assert path.connected(0, 3) and not path.connected(3, 4)
    moved = path.move(np.array([300, 100, 340, 140], dtype=np.float32), 0, np.array([3]))
    assert np.allclose(moved, [[336, 100, 376, 140]], atol=2.0)


def test_a_lost_track_coasts_with_the_camera_and_stops_at_the_cut() -> None:
    shift = [np.array([[1.0, 0.0, 10.0], [0.0, 1.0, 0.0]]) for _ in range(28)]
    motions = [None, *shift[:19], None, *shift[19:]]  # a cut at frame 20
    track = _coast([5, 6], [[100, 100, 140, 140], [110, 100, 150, 140]], motions=motions)
    assert track.first_frame == 0 and track.last_frame == 19  # back to the start, on to the cut
    at = {int(f): box for f, box in zip(track.frames, track.xyxy, strict=True)}
    for frame in (0, 13, 19):  # beyond the asked pads (3 before, 6 after): carried by the camera alone
        centre = (at[frame][0] + at[frame][2]) / 2
        assert abs(centre - (130 + 10 * (frame - 6))) < 1.0  # moves with the picture


def test_a_coasting_box_on_a_still_camera_grows_at_most_a_tenth_in_a_second() -> None:
    still = [np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) for _ in range(79)]
    track = _coast([10, 12], [[200, 100, 240, 150], [200, 100, 240, 150]], motions=[None, *still])
    assert track.last_frame == 72  # coasts on for 60 frames
    coasting = track.frames > 12 + 6  # beyond the asked pad, carried by the camera alone
    widths = track.xyxy[coasting, 2] - track.xyxy[coasting, 0]
    assert float(widths.max()) <= 40 * 1.1 + 0.01  # a still face needs no more; more is background


def test_a_track_of_weak_sightings_only_coasts_a_third_as_far() -> None:
    still = [np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) for _ in range(139)]
    strong = _coast([70, 72], [[200, 100, 240, 150]] * 2, motions=[None, *still])
    weak = _coast([70, 72], [[200, 100, 240, 150]] * 2, motions=[None, *still], weak=True)
    assert (strong.first_frame, strong.last_frame) == (70 - COAST_FRAMES, 72 + COAST_FRAMES)
    assert (weak.first_frame, weak.last_frame) == (70 - WEAK_COAST_FRAMES, 72 + WEAK_COAST_FRAMES)
    assert WEAK_COAST_FRAMES * 3 == COAST_FRAMES


def _coast(
    frames: list[int],
    xyxy: list[list[int]],
    *,
    motions: list[npt.NDArray[np.float64] | None],
    weak: bool = False,
) -> Track:
    """One track seen at ``frames``, finalized over the whole clip (one frame per motion) with the
    camera path of ``motions``: pads of 3 before and 6 after, no smoothing, a 640x360 frame. ``weak``:
    the track is one of weak sightings only."""
    seen = Track(
        track_id=1,
        class_id=0,
        frames=np.array(frames),
        xyxy=np.array(xyxy),
        score=np.full(len(frames), 0.9),
    )
    (track,) = finalize_tracks(
        [seen], frame_count=len(motions), gap_frames=2, pad_before=3, pad_after=6, smooth=0.0,
        resolution_wh=(640, 360), camera=CameraPath.from_motions(motions), weak_ids={1} if weak else (),
    )  # fmt: skip
    return track
