"""YOLOv8 detectors: a torch-free ``.pt`` reader and ONNX converter, the runtime
detector, and provisioning of the plate model and bring-your-own models."""

from veil.detect.yolov8.checkpoint import Checkpoint, TorchModule, load_checkpoint
from veil.detect.yolov8.convert import ConversionInfo, build_model, convert_checkpoint
from veil.detect.yolov8.detector import YoloV8Config, YoloV8Detector
from veil.detect.yolov8.provision import (
    CATEGORY_PATTERN,
    CustomModel,
    add_custom_model,
    custom_models,
    plate_model_path,
)

__all__ = [
    "CATEGORY_PATTERN",
    "Checkpoint",
    "ConversionInfo",
    "CustomModel",
    "TorchModule",
    "YoloV8Config",
    "YoloV8Detector",
    "add_custom_model",
    "build_model",
    "convert_checkpoint",
    "custom_models",
    "load_checkpoint",
    "plate_model_path",
]
