"""``POST /v1/jobs/{id}/track``: follow a box drawn on one frame through the job's video (review page)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from veil.api.deps import ServicesDep, Writer
from veil.api.errors import Expired, error_responses
from veil.api.job_access import JobId, load_job
from veil.api.schemas import TrackCreate, TrackedRegionPublic
from veil.api.services import Services
from veil.errors import JobConflict, SpecError, StorageNotFound
from veil.jobs.tables import JobRow
from veil.media import VideoFrame, iter_frames
from veil.spec import Keyframe
from veil.track.follow import FollowLimits, FollowResult, Gray, follow_box, simplify_keyframes

__all__ = ["router"]

GrayAt = Callable[[int, int], Gray]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

TRACK_DEADLINE_S = 30.0
"""Wall-clock budget of one call, decoding included; following stops there with `time_limit`."""


@router.post(
    "/{job_id}/track",
    response_model=TrackedRegionPublic,
    summary="Follow a drawn box through the video",
    responses=error_responses(400, 401, 403, 404, 409, 410, 422, 429),
)
async def track_box(
    job_id: JobId, body: TrackCreate, principal: Writer, services: ServicesDep
) -> TrackedRegionPublic:
    """Follows the object under `box` (drawn on `frame` of the job's source video) backward and forward,
    until it is lost, the scene cuts, `max_seconds` of video or the server's 30 s budget. Returns keyframes
    for a `tracked_regions` entry of a redaction spec (linear interpolation between them stays within
    1 px of every followed box). Template matching (OpenCV) on the decoded frames; nothing is stored."""
    row = await run_in_threadpool(load_job, services, job_id=job_id, tenant_id=principal.tenant_id)
    result = await run_in_threadpool(_follow, services, row, body)
    keep = simplify_keyframes(result.frames, result.xyxy, tolerance_px=1.0)
    keyframes = [
        Keyframe(frame=int(result.frames[i]), box=tuple(round(float(v), 1) for v in result.xyxy[i]))
        for i in keep
    ]
    return TrackedRegionPublic(
        keyframes=keyframes,
        first_frame=int(result.frames[0]),
        last_frame=int(result.frames[-1]),
        frames_followed=len(result.frames),
        stopped=result.stopped,
    )


def _follow(services: Services, row: JobRow, body: TrackCreate) -> FollowResult:
    if row.purged_at is not None:
        raise Expired("retention deleted this job's input")
    if row.kind != "video":
        raise JobConflict("only videos can be tracked; on an image a drawn box is a region")
    media = row.media or {}
    width, height = int(media.get("width") or 0), int(media.get("height") or 0)
    fps = float(media.get("fps") or 30.0)
    frame_count = media.get("frame_count")
    if frame_count is not None and body.frame >= int(frame_count):
        raise SpecError(f"frame: the video has {frame_count} frames (0 to {int(frame_count) - 1})")
    x1, y1, x2, y2 = body.box
    if not (x2 > x1 and y2 > y1 and x1 < width and y1 < height and x2 > 0 and y2 > 0):
        raise SpecError(f"box must satisfy x1 < x2, y1 < y2 and overlap the {width}x{height} frame")
    box = (max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2))
    limits = FollowLimits(max_frames=max(1, round(body.max_seconds * fps)), deadline_s=TRACK_DEADLINE_S)
    with tempfile.TemporaryDirectory(dir=services.ctx.scratch_dir, prefix="track-") as tmp:
        path = _local_input(services, row, Path(tmp))

        def frames() -> Iterator[tuple[int, GrayAt]]:
            for frame in iter_frames(path):
                yield frame.index, partial(_gray, frame)

        return _run(frames(), body.frame, box, (width, height), limits)


def _gray(frame: VideoFrame, width: int, height: int) -> Gray:
    return frame.gray_thumbnail(width=width, height=height)


def _run(
    frames: Iterator[tuple[int, GrayAt]],
    start: int,
    box: tuple[float, float, float, float],
    resolution_wh: tuple[int, int],
    limits: FollowLimits,
) -> FollowResult:
    try:
        return follow_box(
            frames,
            start_frame=start,
            xyxy=box,
            resolution_wh=resolution_wh,
            limits=limits,
        )
    except ValueError as exc:
        raise SpecError(f"frame: {exc}") from exc


def _local_input(services: Services, row: JobRow, tmp: Path) -> Path:
    local = services.storage.local_path(row.input_key)
    if local is not None and local.is_file():
        return local
    path = tmp / f"input{Path(row.input_key).suffix}"
    try:
        services.storage.get_file(row.input_key, path)
    except StorageNotFound as exc:
        raise Expired("the input is no longer stored") from exc
    return path
