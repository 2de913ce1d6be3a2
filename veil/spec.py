"""The redaction request: what to find, how to mask it, what to output.

One model serves the CLI and the API, and its JSON schema is what API
clients read in ``/openapi.json``, so every field says what it does.
Validators are pure: no file or network access happens here.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

__all__ = [
    "AudioOptions",
    "BUILTIN_CATEGORIES",
    "FACE_MASK_MARGIN",
    "CategorySpec",
    "DetectionOptions",
    "STRENGTH_LEVELS",
    "ExclusionZone",
    "Keyframe",
    "IdFormat",
    "Method",
    "OutputOptions",
    "PersonalDataOptions",
    "Region",
    "RedactionSpec",
    "Shape",
    "Silence",
    "Strength",
    "TrackFilter",
    "TrackStyle",
    "TrackedRegion",
    "TrackingOptions",
    "WebhookSpec",
    "XYXY",
    "resolve_strength",
]

Method = Literal["blur", "pixelate", "black", "box"]
Shape = Literal["ellipse", "rect"]
Strength = Annotated[
    Annotated[int, Field(ge=1, le=100)] | Literal["low", "medium", "high"],
    Field(
        description="How strong `blur` and `pixelate` are: 1 (weakest) to 100, or `low` (20), `medium` (50, "
        "the default) or `high` (80). Even at 1 the masked area stays unrecognisable: the blur is at least "
        "2/3 of the box wide and a pixelated box has at most 12 blocks across. Ignored by `black` and `box`.",
    ),
]
STRENGTH_LEVELS: dict[str, int] = {"low": 20, "medium": 50, "high": 80}
"""The named strength levels and the number each stands for."""


def resolve_strength(value: int | str) -> int:
    """The number 1-100 a ``Strength`` stands for (named levels via ``STRENGTH_LEVELS``)."""
    if isinstance(value, str):
        if value not in STRENGTH_LEVELS:
            raise ValueError(f"unknown strength {value!r}; use 1-100 or {', '.join(STRENGTH_LEVELS)}")
        return STRENGTH_LEVELS[value]
    if not 1 <= value <= 100:
        raise ValueError(f"strength must be in [1, 100], got {value}")
    return int(value)


CategoryName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]

BUILTIN_CATEGORIES: tuple[str, ...] = ("face", "license_plate", "qr_code", "barcode", "text")
"""Categories Veil ships detectors for. Custom ones come from ``veil models add``."""

DEFAULT_CATEGORIES: tuple[str, ...] = ("face", "license_plate")

FACE_MASK_MARGIN = 8.0
"""Pixels a face mask reaches at least beyond its box on every side. The face detector places a small
face's box a few pixels off (its output grid is 4 px), so 1.3x of a 15 px box misses part of the face:
measured on labelled clips in README's accuracy table (issue 12)."""

IdFormat = Literal["us_ssn", "uk_nino", "nl_bsn", "es_dni", "pl_pesel", "se_personnummer", "fr_nir"]
"""National ID formats that ``text`` with ``only: pii`` can check (``veil.detect.text.personal_data``)."""


class _Strict(BaseModel):
    # allow_inf_nan=False: Python's json writes NaN and Infinity by default, and a box holding NaN
    # compares false with everything, so it would validate and then mask nothing.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


XYXY = Annotated[
    tuple[float, float, float, float],
    Field(description="Box as [x1, y1, x2, y2] in pixels of the stored (unrotated) frame."),
]


class CategorySpec(_Strict):
    """Per-category settings. Unset fields inherit the spec-wide defaults."""

    enabled: bool = Field(True, description="Detect and mask this category.")
    threshold: float | None = Field(
        None,
        ge=0.01,
        le=0.99,
        description="Detection score threshold; lower finds more. Unset: tuned default.",
    )
    method: Method | None = Field(None, description="Masking method for this category. Unset: spec `method`.")
    mask_scale: float | None = Field(
        None,
        ge=1.0,
        le=3.0,
        description="Grow each box by this factor before masking. Unset: spec `mask_scale`.",
    )
    mask_margin: float | None = Field(
        None,
        ge=0.0,
        le=64.0,
        description="Grow each box by at least this many pixels on every side before masking (a small "
        "box's position is uncertain by a few pixels). Unset: spec `mask_margin`.",
    )
    shape: Shape | None = Field(None, description="Mask shape for this category. Unset: spec `shape`.")
    strength: Strength | None = Field(None, description="Blur/pixelate strength. Unset: spec `strength`.")
    only: Literal["all", "pii"] | None = Field(
        None,
        description="`text` only: `all` masks every line of text (default); `pii` reads each line and "
        "masks only those holding personal data (e-mail, phone, IBAN, card number, national ID, a name "
        "from `personal_data.names`). The text read is never logged, stored or reported.",
    )


class PersonalDataOptions(_Strict):
    """What counts as personal data for `text` with `only: pii`."""

    id_formats: list[IdFormat] | None = Field(
        None,
        max_length=32,
        description="National ID formats to look for. Unset: all of them.",
    )
    names: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list,
        max_length=10_000,
        description="Names to mask wherever they appear as whole words (case and accents ignored). "
        "The list is part of the job's spec, so it is stored with the job like the rest of the spec.",
    )


class DetectionOptions(_Strict):
    """Speed/recall trade-offs for video. Images always use the full multi-scale search."""

    detect_scale: float = Field(
        1.0,
        gt=0.0,
        le=4.0,
        description="Scale of the detector's working resolution relative to the default. "
        "Lower is faster; higher finds smaller faces.",
    )
    image_search: Literal["thorough", "fast"] = Field(
        "thorough",
        description="Stills: `thorough` searches several scales and tiles (highest recall, ~1-2 s "
        "for 1080p on 2 CPU cores); `fast` runs the single-pass video detectors (~0.3 s for 1080p; "
        "misses more tiny faces).",
    )
    detect_every: int = Field(
        2,
        ge=1,
        le=30,
        description="Run detection on every Nth video frame; tracking fills the frames between. "
        "Above 1, the plate model also sits out every other detection pass while the picture holds still "
        "(plates are followed through it); 1 runs every detector on every frame.",
    )
    follow_camera: bool = Field(
        False,
        description="Trust the camera's motion between detections: a smooth pan is detected every "
        "`detect_every`th frame like a still picture, not every frame, and the boxes between move with the "
        "camera; a cut, a blurred whip pan, a pan that reveals a fifth of the picture, and a box moving "
        "against the camera still detect at once. On moving-camera footage 1.2-1.4x faster analysis, for a "
        "little recall: on held-out clips face box recall moved by -0.003 to +0.001, with up to 2 more "
        'leaked faces of 44-84 (README, "Following the camera"). Off by default: recall first.',
    )

    def unused_for(self, kind: str) -> list[str]:
        """The options set away from their defaults that a file of ``kind`` (``image`` or ``video``)
        cannot use: the video schedule's on a still, which always gets the still search, and
        ``image_search`` on a video. Callers name them rather than ignore them silently."""
        names = {"image": ("detect_every", "follow_camera"), "video": ("image_search",)}.get(kind, ())
        return [name for name in names if getattr(self, name) != type(self).model_fields[name].default]


class TrackingOptions(_Strict):
    gap_frames: int = Field(
        15, ge=0, le=300, description="Bridge a track through up to this many missed frames."
    )
    pad_before: int = Field(
        3, ge=0, le=300, description="Mask this many frames before a track first appears."
    )
    pad_after: int = Field(6, ge=0, le=300, description="Mask this many frames after a track was last seen.")
    smooth: float = Field(
        0.5,
        ge=0.0,
        le=0.95,
        description="Box smoothing strength (0 = none). Boxes only grow, never shrink, when smoothed.",
    )


class OutputOptions(_Strict):
    format: Literal["auto", "mp4", "mov", "mkv", "jpeg", "png", "webp"] = Field(
        "auto", description="Output container or image format. `auto` keeps the input's kind (video → mp4)."
    )
    codec: Literal["h264", "h265"] = Field("h264", description="Video codec of the output.")
    crf: int = Field(
        20, ge=0, le=51, description="Constant rate factor for the video encoder (lower is better)."
    )
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = Field(
        "veryfast", description="x264/x265 speed preset."
    )
    keep_bitrate: bool = Field(
        False, description="Aim for the input's video bitrate (within 15 %) instead of `crf`."
    )
    keep_metadata: bool = Field(
        False,
        description="Keep identifying metadata (EXIF GPS, serials, MP4 location/make/model). Off by default.",
    )
    jpeg_quality: int = Field(92, ge=10, le=100, description="Quality of JPEG/WebP image outputs.")


_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "user-agent"}
    | {"te", "upgrade"}
)
HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")]
HeaderValue = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[\x20-\x7e]+$")]


class WebhookSpec(_Strict):
    url: HttpUrl = Field(description="Where to POST the job object when the job reaches a terminal state.")
    headers: dict[HeaderName, HeaderValue] | None = Field(
        None,
        max_length=10,
        description="Extra headers sent with every attempt, e.g. the receiver's own `Authorization`. Their "
        "values are stored encrypted and never logged or returned. Not allowed: Host, Content-*, "
        "Transfer-Encoding, Connection, User-Agent, and `Veil-*` (Veil's own).",
    )

    @model_validator(mode="after")
    def _allowed_headers(self) -> WebhookSpec:
        for name in self.headers or {}:
            lowered = name.lower()
            if lowered in _RESERVED_HEADERS or lowered.startswith("veil-"):
                raise ValueError(f"webhook header {name} is set by Veil and cannot be overridden")
        return self


class TrackFilter(_Strict):
    """Used with `source_job`: choose which detected tracks to mask."""

    track_ids: list[int] = Field(
        default_factory=list, max_length=10_000, description="Track ids from the source job."
    )
    scope: Literal["include", "exclude"] = Field(
        "exclude", description="`include`: mask only these tracks. `exclude`: mask every track but these."
    )


class TrackStyle(_Strict):
    """Used with `source_job`: how one detected track is masked, instead of its category's settings."""

    track_id: int = Field(ge=0, le=2**31 - 1, description="Track id from the source job.")
    method: Method | None = Field(None, description="Masking method. Unset: the category's.")
    strength: Strength | None = Field(None, description="Blur/pixelate strength. Unset: the category's.")


class Region(_Strict):
    """A manual region, masked for a time span whatever the detectors found (logos, badges, screens)."""

    box: XYXY
    start: float = Field(
        0.0,
        ge=0.0,
        description="Start time in seconds from the start of the file, as a player shows it "
        "(ignored for images).",
    )
    end: float | None = Field(None, ge=0.0, description="End time in seconds; unset means until the end.")
    method: Method | None = Field(None, description="Masking method; unset uses the spec `method`.")
    shape: Shape = Field("rect", description="Mask shape.")
    strength: Strength | None = Field(None, description="Blur/pixelate strength. Unset: spec `strength`.")

    @model_validator(mode="after")
    def _ordered(self) -> Region:
        x1, y1, x2, y2 = self.box
        if x2 <= x1 or y2 <= y1:
            raise ValueError("box must satisfy x1 < x2 and y1 < y2")
        if self.end is not None and self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class Keyframe(_Strict):
    """Where a tracked region is in one frame."""

    frame: int = Field(ge=0, le=10_000_000, description="Frame number (0 is the first frame of the source).")
    box: XYXY

    @model_validator(mode="after")
    def _ordered(self) -> Keyframe:
        x1, y1, x2, y2 = self.box
        if x2 <= x1 or y2 <= y1:
            raise ValueError("box must satisfy x1 < x2 and y1 < y2")
        return self


class TrackedRegion(_Strict):
    """A manual region that moves: boxes at keyframes, masked from the first keyframe to the last.

    Between two keyframes the box is interpolated linearly, corner by corner; outside the first and
    last keyframe nothing is masked. ``POST /v1/jobs/{id}/track`` returns keyframes in this shape
    for a box drawn on one frame. For images, frame 0 is the image.
    """

    keyframes: list[Keyframe] = Field(
        min_length=1,
        max_length=100_000,
        description="Boxes at frame numbers, in strictly increasing frame order.",
    )
    label: str | None = Field(
        None, max_length=80, description="A name for people reviewing the spec (e.g. `badge`); not used."
    )
    method: Method | None = Field(None, description="Masking method; unset uses the spec `method`.")
    shape: Shape = Field("rect", description="Mask shape.")
    strength: Strength | None = Field(None, description="Blur/pixelate strength. Unset: spec `strength`.")

    @model_validator(mode="after")
    def _increasing(self) -> TrackedRegion:
        frames = [k.frame for k in self.keyframes]
        if any(b <= a for a, b in zip(frames, frames[1:], strict=False)):
            raise ValueError("keyframes must be in strictly increasing frame order")
        return self

    @property
    def first_frame(self) -> int:
        return self.keyframes[0].frame

    @property
    def last_frame(self) -> int:
        return self.keyframes[-1].frame

    def box_at(self, frame: int) -> tuple[float, float, float, float] | None:
        """The box at ``frame`` (interpolated between keyframes), or ``None`` outside the region's span."""
        keys = self.keyframes
        if frame < keys[0].frame or frame > keys[-1].frame:
            return None
        i = bisect_right(keys, frame, key=lambda k: k.frame) - 1
        a = keys[i]
        if a.frame == frame or i + 1 >= len(keys):
            return a.box
        b = keys[i + 1]
        t = (frame - a.frame) / (b.frame - a.frame)
        return (
            a.box[0] + t * (b.box[0] - a.box[0]),
            a.box[1] + t * (b.box[1] - a.box[1]),
            a.box[2] + t * (b.box[2] - a.box[2]),
            a.box[3] + t * (b.box[3] - a.box[3]),
        )


class ExclusionZone(_Strict):
    """Detections whose centre falls inside the zone are not masked (e.g. a poster of a public figure).
    Manual regions are masked even inside a zone."""

    box: XYXY
    start: float = Field(
        0.0,
        ge=0.0,
        description="Start time in seconds from the start of the file, as a player shows it "
        "(ignored for images).",
    )
    end: float | None = Field(None, ge=0.0, description="End time in seconds; unset means until the end.")

    @model_validator(mode="after")
    def _ordered(self) -> ExclusionZone:
        x1, y1, x2, y2 = self.box
        if x2 <= x1 or y2 <= y1:
            raise ValueError("box must satisfy x1 < x2 and y1 < y2")
        if self.end is not None and self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class Silence(_Strict):
    """A stretch of a video's sound to silence: a spoken name or address, radio traffic."""

    start: float = Field(
        ge=0.0, description="Start time in seconds from the start of the file, as for `regions`."
    )
    end: float = Field(gt=0.0, description="End time in seconds.")

    @model_validator(mode="after")
    def _ordered(self) -> Silence:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class AudioOptions(_Strict):
    """What happens to a video's sound. By default it is kept as it is (copied, or converted to AAC where
    the output container cannot hold it)."""

    remove: bool = Field(False, description="Write the output without any sound track.")
    mute: list[Silence] = Field(
        default_factory=list,
        max_length=1000,
        description="Silence the sound in these spans, sample-exactly, in every sound track (which is then "
        "re-encoded as AAC). The rest of the sound is kept.",
    )
    fill: Literal["silence", "bleep"] = Field(
        "silence",
        description="What the muted spans hold: silence, or a 1 kHz bleep at -20 dBFS (as broadcasters "
        "censor speech, so a listener hears that something was taken out).",
    )

    @model_validator(mode="after")
    def _one_way(self) -> AudioOptions:
        if self.remove and self.mute:
            raise ValueError("mute needs the sound kept; remove drops all of it (send one of them)")
        if self.fill != "silence" and not self.mute:
            raise ValueError("fill says what the `mute` spans hold; send the spans in `mute`")
        return self

    def changes_sound(self) -> bool:
        return self.remove or bool(self.mute)


class RedactionSpec(_Strict):
    """What one job or one CLI run does."""

    mode: Literal["redact", "detect"] = Field(
        "redact", description="`redact` writes a masked file; `detect` only returns tracks for review."
    )
    categories: dict[CategoryName, CategorySpec] = Field(
        default_factory=lambda: {name: CategorySpec() for name in DEFAULT_CATEGORIES},
        max_length=32,
        description="Categories to detect, each with its own settings. Default: face and license_plate.",
    )
    method: Method = Field("blur", description="Default masking method.")
    shape: Shape | None = Field(
        None,
        description="Default mask shape. Unset: `ellipse` for faces, `rect` for plates, codes and "
        "custom categories.",
    )
    mask_scale: float = Field(1.3, ge=1.0, le=3.0, description="Default box growth factor before masking.")
    mask_margin: float | None = Field(
        None,
        ge=0.0,
        le=64.0,
        description="Default least growth, in pixels on every side, before masking. Unset: "
        f"{FACE_MASK_MARGIN:g} for faces, 0 for the other categories.",
    )
    strength: Strength = Field("medium", description="Default blur/pixelate strength.")
    detection: DetectionOptions = Field(default_factory=DetectionOptions)
    tracking: TrackingOptions = Field(default_factory=TrackingOptions)
    output: OutputOptions = Field(default_factory=OutputOptions)
    webhook: WebhookSpec | None = Field(None, description="Signed callback on completion.")
    source_job: str | None = Field(
        None,
        max_length=64,
        description="Reuse the tracks of this finished `detect` job instead of detecting again.",
    )
    filter: TrackFilter | None = Field(None, description="With `source_job`: which tracks to mask.")
    track_styles: list[TrackStyle] = Field(
        default_factory=list,
        max_length=10_000,
        description="With `source_job`: method and strength of single tracks (the review editor's per-track "
        "choice); other tracks use their category's.",
    )
    regions: list[Region] = Field(
        default_factory=list, max_length=1000, description="Manual regions to mask."
    )
    tracked_regions: list[TrackedRegion] = Field(
        default_factory=list,
        max_length=1000,
        description="Manual regions that move: keyframe boxes, interpolated between keyframes "
        "(drawn in the review page, or returned by `POST /v1/jobs/{id}/track`).",
    )
    exclusion_zones: list[ExclusionZone] = Field(
        default_factory=list, max_length=1000, description="Zones in which detections are not masked."
    )
    audio: AudioOptions = Field(
        default_factory=AudioOptions, description="Videos: remove the sound, or silence parts of it."
    )
    personal_data: PersonalDataOptions | None = Field(
        None, description="With `text` set to `only: pii`: which ID formats and names count as personal data."
    )

    @model_validator(mode="after")
    def _consistent(self) -> RedactionSpec:
        if self.filter is not None and self.source_job is None:
            raise ValueError(
                "filter needs source_job: track ids only mean something for a finished detect job"
            )
        if self.mode == "detect" and (self.source_job is not None):
            raise ValueError("a detect job cannot take source_job")
        if self.mode == "detect" and self.audio.changes_sound():
            raise ValueError("audio applies to redact jobs; a detect job writes no file")
        for name, cat in self.categories.items():
            if cat.only is not None and name != "text":
                raise ValueError(f"`only` applies to the text category, not {name!r}")
        text = self.categories.get("text")
        if self.personal_data is not None and (text is None or not text.enabled or text.only != "pii"):
            raise ValueError("personal_data needs the text category enabled with only: pii")
        if self.track_styles and self.source_job is None:
            raise ValueError(
                "track_styles needs source_job: track ids only mean something for a finished detect job"
            )
        ids = [t.track_id for t in self.track_styles]
        if len(set(ids)) != len(ids):
            raise ValueError("track_styles: each track id at most once")
        return self

    def masks_nothing(self) -> str | None:
        """Why this spec would do nothing (a silent no-op), or None when it does something.

        A redaction with every category off, no manual regions and no reviewed source job would copy
        the file unmasked; a detection with every category off would find nothing."""
        if self.enabled_categories():
            return None
        if self.mode == "detect":
            return (
                "this detect spec finds nothing: every category is off; enable one in `categories`, "
                'e.g. {"face": {}}'
            )
        if self.regions or self.tracked_regions or self.source_job is not None or self.audio.changes_sound():
            return None
        return (
            "this spec masks nothing: every category is off and there are no `regions` or "
            '`tracked_regions`; enable a category, add regions, or send `"mode": "detect"` to only look'
        )

    def enabled_categories(self) -> list[str]:
        """Enabled category names in a stable order: the category table the pipeline uses."""
        return [name for name, cat in self.categories.items() if cat.enabled]

    def method_for(self, category: str) -> Method:
        cat = self.categories.get(category)
        return cat.method if cat is not None and cat.method is not None else self.method

    def shape_for(self, category: str) -> Shape:
        cat = self.categories.get(category)
        if cat is not None and cat.shape is not None:
            return cat.shape
        if self.shape is not None:
            return self.shape
        return "ellipse" if category == "face" else "rect"

    def strength_for(self, category: str) -> int:
        """The strength 1-100 of ``category``'s blur or pixelation."""
        cat = self.categories.get(category)
        value = cat.strength if cat is not None and cat.strength is not None else self.strength
        return resolve_strength(value)

    def region_strength(self, region: Region | TrackedRegion) -> int:
        """The strength 1-100 of a manual region's blur or pixelation."""
        return resolve_strength(region.strength if region.strength is not None else self.strength)

    def mask_scale_for(self, category: str) -> float:
        cat = self.categories.get(category)
        return cat.mask_scale if cat is not None and cat.mask_scale is not None else self.mask_scale

    def mask_margin_for(self, category: str) -> float:
        """Pixels every box of ``category`` grows at least, on every side, before masking."""
        cat = self.categories.get(category)
        if cat is not None and cat.mask_margin is not None:
            return cat.mask_margin
        if self.mask_margin is not None:
            return self.mask_margin
        return FACE_MASK_MARGIN if category == "face" else 0.0
