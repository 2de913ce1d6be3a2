"""The per-file report: what was found and masked, how long it took, which
models ran. It holds no image data and no file names beyond what the caller
passed in (the CLI records the path the user gave; the API records none)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from veil import __version__

__all__ = ["AudioInfo", "MediaSummary", "ModelInfo", "Report", "TrackFrame", "TrackReport"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AudioInfo(_Model):
    codec: str
    channels: int | None = None
    sample_rate: int | None = None
    duration: float | None = None


class MediaSummary(_Model):
    kind: Literal["image", "video"]
    container: str
    codec: str
    width: int = Field(description="Stored width in pixels (before rotation).")
    height: int = Field(description="Stored height in pixels (before rotation).")
    rotation: int = Field(0, description="Display rotation in degrees (0, 90, 180, 270).")
    fps: float | None = None
    frame_count: int | None = None
    duration: float | None = None
    bit_rate: int | None = None
    audio: list[AudioInfo] = Field(default_factory=list)


class TrackFrame(_Model):
    frame: int
    box: tuple[float, float, float, float]
    score: float = Field(description="Detector score; 0 for frames filled in by tracking (gap, padding).")


class TrackReport(_Model):
    id: int
    category: str
    frames: list[TrackFrame]
    label: str | None = Field(
        None,
        description="What the detector took the object for, where it says: for `text` with `only: pii`, "
        "the personal-data pattern the line matched (`email`, `phone`, `iban`, `card`, a national ID format "
        "or `name`). Never the recognised text.",
    )


class ModelInfo(_Model):
    name: str
    category: str
    sha256: str


class Report(_Model):
    file: str | None = None
    kind: Literal["image", "video"]
    mode: Literal["redact", "detect"]
    input: MediaSummary
    output: MediaSummary | None = None
    counts: dict[str, int] = Field(
        default_factory=dict, description="Tracks (video) or boxes (image) per category."
    )
    masked_frames: int = 0
    tracks: list[TrackReport] = Field(default_factory=list)
    models: list[ModelInfo] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per stage.")
    input_sha256: str
    output_sha256: str | None = None
    veil_version: str = Field(
        default_factory=lambda: __version__, max_length=40, description="Version of Veil that made it."
    )
