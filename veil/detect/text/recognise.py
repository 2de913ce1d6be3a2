"""Read the text of a line: PP-OCRv4's CTC recogniser, run with Veil's onnxruntime code.

Each line quad is cut out of the frame with a perspective warp (so a rotated line is read level),
resized to 48 px high, normalised to [-1, 1] and run through the recogniser in small batches. The
output is a per-column distribution over the character table: greedy CTC decoding keeps each
column's best class, merges repeats and drops blanks. The character table travels inside the
ONNX file's metadata (``character``, one character a line), with CTC's blank first and a space
last, as PaddleOCR builds it.

The text read here is personal data by design: it is returned to the caller and nothing else.
Nothing in this module logs, stores or raises it.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from veil.detect.runtime import RuntimeOptions, create_session
from veil.errors import ModelCorrupt
from veil.frames import RGBFrame

__all__ = ["TextRecogniser", "crop_quad"]

_HEIGHT = 48
_MAX_WIDTH = 960
_BATCH = 8


def crop_quad(frame: RGBFrame, quad: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """The line inside ``quad`` (corners clockwise from top-left, frame pixels), warped level.

    A quad taller than wide by 1.5x or more is a vertical line and is turned a quarter so it reads
    left to right."""
    q = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    width = int(max(float(np.linalg.norm(q[0] - q[1])), float(np.linalg.norm(q[3] - q[2])), 1.0))
    height = int(max(float(np.linalg.norm(q[0] - q[3])), float(np.linalg.norm(q[1] - q[2])), 1.0))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(q, target)
    crop = cv2.warpPerspective(
        frame, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    if height >= 1.5 * width:
        crop = np.ascontiguousarray(np.rot90(crop))
    return np.asarray(crop, dtype=np.uint8)


class TextRecogniser:
    """Reads line crops. Not thread-safe (one onnxruntime session)."""

    def __init__(self, model_path: Path, *, runtime: RuntimeOptions) -> None:
        self.session = create_session(model_path, options=runtime)
        self.input_name = self.session.get_inputs()[0].name
        table = self.session.get_modelmeta().custom_metadata_map.get("character")
        if not table:
            raise ModelCorrupt("the text recogniser has no character table; run `veil models pull`")
        self.characters = ["", *table.splitlines(), " "]
        classes = self.session.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and classes != len(self.characters):
            raise ModelCorrupt("the text recogniser's character table does not match its output")

    def read(self, frame: RGBFrame, quads: npt.NDArray[np.float32]) -> list[str]:
        """The text of each quad, in order (empty where nothing was read)."""
        crops = [crop_quad(frame, q) for q in np.asarray(quads, dtype=np.float32).reshape(-1, 4, 2)]
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / max(crops[i].shape[0], 1))
        texts = [""] * len(crops)
        for start in range(0, len(order), _BATCH):
            chunk = order[start : start + _BATCH]
            for i, text in zip(chunk, self._read_batch([crops[i] for i in chunk]), strict=True):
                texts[i] = text
        return texts

    def _read_batch(self, crops: list[npt.NDArray[np.uint8]]) -> list[str]:
        ratios = [c.shape[1] / max(c.shape[0], 1) for c in crops]
        width = int(min(_MAX_WIDTH, max(320, np.ceil(_HEIGHT * max(ratios)))))
        batch = np.zeros((len(crops), 3, _HEIGHT, width), dtype=np.float32)
        for k, (crop, ratio) in enumerate(zip(crops, ratios, strict=True)):
            w = int(min(width, max(1, np.ceil(_HEIGHT * ratio))))
            resized = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), (w, _HEIGHT))
            batch[k, :, :, :w] = (resized.astype(np.float32).transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
        probs = self.session.run(None, {self.input_name: batch})[0]
        best = np.argmax(probs, axis=2)
        texts: list[str] = []
        for row in best:
            keep = np.ones(row.shape, dtype=bool)
            keep[1:] = row[1:] != row[:-1]
            keep &= row != 0
            texts.append("".join(self.characters[int(c)] for c in row[keep]))
        return texts
