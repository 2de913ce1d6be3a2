"""Follow detections over frames, then finish the tracks offline: bridge gaps,
pad before and after, smooth (boxes only ever grow), stitch segment tracks, and serialise tracks."""

from veil.track.carry import TrackCarrier
from veil.track.confirm import ConfirmingTracker
from veil.track.motion import CameraPath, MotionEstimator, Similarity
from veil.track.sampling import DetectionSchedule, PassStrides
from veil.track.serialise import tracks_from_npz, tracks_to_npz
from veil.track.stitch import stitch_segment_tracks
from veil.track.tracker import IoUTracker, TrackerConfig
from veil.track.tracks import Track, finalize_tracks, track_from_frames, tracks_at_frames

__all__ = [
    "CameraPath",
    "ConfirmingTracker",
    "DetectionSchedule",
    "IoUTracker",
    "MotionEstimator",
    "PassStrides",
    "Similarity",
    "Track",
    "TrackCarrier",
    "TrackerConfig",
    "finalize_tracks",
    "stitch_segment_tracks",
    "track_from_frames",
    "tracks_from_npz",
    "tracks_to_npz",
    "tracks_at_frames",
]
