"""API-only shapes: account, links, health. Job, key and audit shapes are in ``veil.jobs.schemas``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from veil.auth.schemas import ApiKeyPublic
from veil.spec import XYXY, Keyframe, RedactionSpec

__all__ = [
    "AccountPublic",
    "HealthPublic",
    "JobCreate",
    "Limits",
    "LinkCreate",
    "LinkPublic",
    "ReadyPublic",
    "TrackCreate",
    "TrackedRegionPublic",
    "UsagePublic",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class LinkCreate(_Model):
    expires_in: int | None = Field(
        None,
        ge=1,
        le=7 * 86400,
        description="Lifetime in seconds (1 s to 7 days). Unset: VEIL_LINK_TTL_S (24 h).",
    )
    file: Literal["result", "source", "preview"] = Field(
        "result",
        description="`result`: the redacted file. `source`: the job's unredacted input, e.g. for a "
        "review player (a `<video>` element cannot send an API key). `preview`: a detect job's copy of its "
        "source that browsers show (H.264 MP4 or JPEG), made when they cannot show the source itself "
        "(`GET /v1/jobs/{id}/preview`).",
    )


class LinkPublic(_Model):
    url: str = Field(description="Downloads the result without an API key until `expires_at`.")
    expires_at: datetime = Field(description="When the link stops working (UTC).")


class UsagePublic(_Model):
    jobs_by_state: dict[str, int] = Field(description="Jobs of the tenant per state, all time.")
    jobs_last_24h: int = Field(ge=0, description="Jobs created in the last 24 hours.")
    bytes_in: int = Field(ge=0, description="Bytes uploaded, all time.")
    bytes_out: int = Field(ge=0, description="Result bytes produced, all time.")
    frames: int = Field(ge=0, description="Frames processed, all time.")
    processing_seconds: float = Field(ge=0, description="Worker time used, all time.")


class Limits(_Model):
    max_upload_mb: int = Field(ge=1, description="Largest upload (413 above).")
    max_pixels: int = Field(ge=1, description="Largest frame in pixels (422 above).")
    max_duration_s: float = Field(gt=0, description="Longest video in seconds (422 above).")
    max_frames: int = Field(ge=1, description="Most video frames (422 above).")
    max_decode_gigapixels: float = Field(
        gt=0, description="Most frames x pixels of a video, in gigapixels (422 above)."
    )
    rate_limit_per_minute: int = Field(ge=1, description="Requests per minute for this key (429 above).")
    max_wait_s: float = Field(ge=0, description="Longest `wait` honoured on POST /v1/jobs.")
    retention_hours: float = Field(gt=0, description="Inputs and results are deleted after this long.")
    queue_max: int = Field(ge=1, description="Queued jobs (all tenants) before submissions get 503.")


class AccountPublic(_Model):
    key: ApiKeyPublic = Field(description="The key making this request.")
    usage: UsagePublic
    limits: Limits


class HealthPublic(_Model):
    status: Literal["ok"] = Field(description="Always `ok` when the process answers.")


class ReadyPublic(_Model):
    status: Literal["ready", "not_ready"] = Field(description="Whether the service can take and run jobs.")
    checks: dict[str, str] = Field(description="Each dependency and its state (`ok` or an error code).")


class JobCreate(_Model):
    """The `multipart/form-data` body of `POST /v1/jobs`."""

    file: bytes = Field(
        b"",
        description="The image or video (up to VEIL_MAX_UPLOAD_MB). Omit only with `spec.source_job`.",
    )
    spec: RedactionSpec = Field(
        default_factory=RedactionSpec, description="The redaction spec as JSON text. Omit for all defaults."
    )


class TrackCreate(_Model):
    """A box drawn on one frame of a job's video, to be followed through the video."""

    frame: int = Field(ge=0, le=10_000_000, description="Frame number the box was drawn on (0 is the first).")
    box: XYXY
    max_seconds: float = Field(
        10.0, gt=0, le=60, description="Follow at most this many seconds of video in each direction."
    )


class TrackedRegionPublic(_Model):
    """Where the drawn box's object is, as keyframes for a `tracked_regions` entry of a spec."""

    keyframes: list[Keyframe] = Field(
        description="Boxes at frame numbers; a spec interpolates linearly between them. The box is masked "
        "from the first keyframe to the last."
    )
    first_frame: int = Field(ge=0, description="First frame the object was followed to.")
    last_frame: int = Field(ge=0, description="Last frame the object was followed to.")
    frames_followed: int = Field(ge=1, description="Frames with a box (including the drawn one).")
    stopped: dict[
        Literal["forward", "backward"], Literal["lost", "scene_cut", "video_end", "frame_limit", "time_limit"]
    ] = Field(
        description="Why following ended in each direction: `lost` (the object left or was covered), "
        "`scene_cut`, `video_end`, `frame_limit` (`max_seconds`) or `time_limit` (the server's time budget)."
    )
