"""Text lines (name badges, documents, screens, signs) with PP-OCRv4's detector, as a Veil ``Detector``.

The frame is resized so its long side is ``long_side`` (each side rounded to the network's stride
of 32), normalised as PaddleOCR trained it (BGR, ``(x / 255 - 0.5) / 0.5``) and run once; the
probability map goes through DB post-processing (``veil.detect.text.db``). Each line comes back
as a rotated quad: ``Detections.xyxy`` is its bounding box and ``Detections.outline`` the quad,
so a tilted line is masked as the tilted rectangle it is, not as a loose upright box.

With ``only="pii"`` the recogniser reads every line and only lines whose text matches a
personal-data pattern (``veil.detect.text.personal_data``) are returned; the text itself never
leaves ``detect``. ``Detections.label`` says which pattern each returned line matched (an index into
``PATTERNS``), which the report carries as the track's ``label``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from veil.detect.runtime import RuntimeOptions, create_session
from veil.detect.text.db import DBParams, db_quads
from veil.detect.text.graph import simplified_det_bytes
from veil.detect.text.personal_data import ID_FORMATS, PATTERNS, PersonalDataMatcher
from veil.detect.text.recognise import TextRecogniser
from veil.detections import Detections
from veil.frames import RGBFrame

__all__ = ["TextConfig", "TextDetector"]

_STRIDE = 32


class TextConfig(BaseModel):
    """Settings of the PP-OCRv4 text-line detector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ppocr_text"] = Field("ppocr_text", description="Detector kind (discriminator).")
    threshold: float = Field(
        0.5,
        ge=0.01,
        le=0.99,
        description="Minimum mean text probability inside a line's box (DB's box score).",
    )
    bin_threshold: float = Field(
        0.3, ge=0.05, le=0.95, description="Pixels above this text probability belong to a line's core."
    )
    unclip_ratio: float = Field(
        1.6, ge=1.0, le=4.0, description="How far a line's core is grown back to the whole line (DB unclip)."
    )
    long_side: int = Field(
        960,
        ge=160,
        le=4096,
        description="Long side of the network input in pixels. Lines thinner than about 8 px at this "
        "scale are missed; larger is slower (time grows with the pixel count).",
    )
    upscale: bool = Field(False, description="Allow enlarging frames whose long side is below `long_side`.")
    only: Literal["all", "pii"] = Field(
        "all",
        description="`all`: every line of text. `pii`: read each line and keep only those matching a "
        "personal-data pattern (e-mail, phone, IBAN, card, national ID, listed names).",
    )
    id_formats: tuple[str, ...] = Field(
        tuple(ID_FORMATS),
        max_length=len(ID_FORMATS),
        description="With only=pii: national ID formats that count as personal data.",
    )
    names: tuple[str, ...] = Field(
        (),
        max_length=10_000,
        description="With only=pii: names that count as personal data (whole words; case and accents "
        "ignored).",
    )

    @field_validator("id_formats")
    @classmethod
    def _known_formats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in value if f not in ID_FORMATS]
        if unknown:
            raise ValueError(f"unknown ID format {unknown[0]!r}; known: {', '.join(ID_FORMATS)}")
        return value


def _input_size(width: int, height: int, config: TextConfig) -> tuple[int, int]:
    scale = config.long_side / max(width, height)
    if not config.upscale:
        scale = min(scale, 1.0)
    return (
        max(_STRIDE, round(width * scale / _STRIDE) * _STRIDE),
        max(_STRIDE, round(height * scale / _STRIDE) * _STRIDE),
    )


def _resize(frame: RGBFrame, size_wh: tuple[int, int]) -> RGBFrame:
    """``frame`` resized to ``size_wh``: shrunk by the largest whole factor with pixel averaging
    (``INTER_AREA``), then bilinearly to the exact size.

    ``INTER_AREA`` is fast only for a whole factor that divides both sides: 1920x1080 to 960x544 in
    one step took 30-50 ms on the 2-core dev machine, 1920x1080 to 960x540 about 1 ms, and the
    bilinear step from there about 1 ms more. Sides the factor does not divide take the slow path.
    """
    height, width = frame.shape[:2]
    factor = int(min(width / size_wh[0], height / size_wh[1]))
    if factor >= 2:
        if width % factor == 0 and height % factor == 0:
            size = (width // factor, height // factor)
            frame = np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        else:
            return np.asarray(cv2.resize(frame, size_wh, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    if frame.shape[1] == size_wh[0] and frame.shape[0] == size_wh[1]:
        return frame
    return np.asarray(cv2.resize(frame, size_wh, interpolation=cv2.INTER_LINEAR), dtype=np.uint8)


class TextDetector:
    """PP-OCRv4 text lines as rotated quads. Not thread-safe."""

    def __init__(
        self,
        config: TextConfig,
        *,
        model_path: Path,
        runtime: RuntimeOptions,
        class_id: int = 0,
        recogniser_path: Path | None = None,
        model_name: str = "ppocrv4_det",
    ) -> None:
        self.config = config
        self.class_id = class_id
        self.model_name = model_name if config.only == "all" else f"{model_name}+rec"
        self.session = create_session(simplified_det_bytes(model_path), options=runtime)
        self.input_name = self.session.get_inputs()[0].name
        self.params = DBParams(
            bin_threshold=config.bin_threshold,
            box_threshold=config.threshold,
            unclip_ratio=config.unclip_ratio,
        )
        self.recogniser: TextRecogniser | None = None
        self.matcher: PersonalDataMatcher | None = None
        if config.only == "pii":
            if recogniser_path is None:
                raise ValueError("only=pii needs the recogniser model")
            self.recogniser = TextRecogniser(recogniser_path, runtime=runtime)
            self.matcher = PersonalDataMatcher(id_formats=config.id_formats, names=config.names)
        self._warm_up()

    def _warm_up(self) -> None:
        self.detect(np.zeros((64, 64, 3), dtype=np.uint8))

    def quads(self, frame: RGBFrame) -> tuple[np.ndarray, np.ndarray]:
        """Every line's quad (N, 4, 2) in frame pixels and its score (N,), before any PII filter."""
        height, width = frame.shape[:2]
        in_w, in_h = _input_size(width, height, self.config)
        resized = _resize(frame, (in_w, in_h))
        # (x - 127.5) / 127.5 == (x / 255 - 0.5) / 0.5, channels swapped to BGR, NCHW float32: one pass
        blob = cv2.dnn.blobFromImage(resized, scalefactor=1 / 127.5, mean=(127.5, 127.5, 127.5), swapRB=True)
        prob = self.session.run(None, {self.input_name: blob})[0][0, 0]
        quads, scores = db_quads(prob, self.params)
        if len(quads):
            quads = quads * np.array([width / in_w, height / in_h], dtype=np.float32)
            quads[..., 0] = quads[..., 0].clip(0, width)
            quads[..., 1] = quads[..., 1].clip(0, height)
        return quads.astype(np.float32), scores

    def detect(self, frame: RGBFrame) -> Detections:
        quads, scores = self.quads(frame)
        if self.recogniser is None or self.matcher is None:
            return Detections.from_polygons(quads, scores, class_id=self.class_id)
        if not len(quads):
            return Detections.empty()
        texts = self.recogniser.read(frame, quads)
        found = [self.matcher.match(t) for t in texts]
        del texts  # recognised text goes no further than this line
        keep = np.array([p is not None for p in found], dtype=bool)
        if not keep.any():
            return Detections.empty()
        dets = Detections.from_polygons(quads[keep], scores[keep], class_id=self.class_id)
        labels = np.array([PATTERNS.index(p) for p in found if p is not None], dtype=np.int64)
        return Detections(
            xyxy=dets.xyxy,
            confidence=dets.confidence,
            class_id=dets.class_id,
            outline=dets.outline,
            label=labels,
        )
