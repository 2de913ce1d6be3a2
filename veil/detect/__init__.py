"""Detectors behind one interface, their model files, and the registry that picks one per category."""

from veil.detect.base import Detector, RGBFrame
from veil.detect.centerface import CenterFace, CenterFaceConfig
from veil.detect.models import MODELS, ModelEntry, ModelSpec, ModelStore
from veil.detect.registry import (
    DetectorConfig,
    available_categories,
    build_detector,
    build_from_config,
    model_sha256,
)
from veil.detect.runtime import RuntimeOptions
from veil.detections import Detections

__all__ = [
    "MODELS",
    "CenterFace",
    "CenterFaceConfig",
    "Detections",
    "Detector",
    "DetectorConfig",
    "ModelEntry",
    "ModelSpec",
    "ModelStore",
    "RGBFrame",
    "RuntimeOptions",
    "available_categories",
    "build_detector",
    "build_from_config",
    "model_sha256",
]
