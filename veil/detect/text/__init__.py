"""Text lines as a category: PP-OCRv4's detector and recogniser (ONNX files from a pinned wheel), DB
post-processing in NumPy/OpenCV, and a personal-data matcher for ``only: pii``."""

from veil.detect.text.db import DBParams, db_quads
from veil.detect.text.detector import TextConfig, TextDetector
from veil.detect.text.personal_data import ID_FORMATS, PATTERNS, PersonalDataMatcher

__all__ = [
    "ID_FORMATS",
    "PATTERNS",
    "DBParams",
    "PersonalDataMatcher",
    "TextConfig",
    "TextDetector",
    "db_quads",
]
