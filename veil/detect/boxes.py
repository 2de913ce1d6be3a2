"""Moved to ``veil.boxes`` (bottom level, no model code); this name stays for branches in flight."""

from veil.boxes import box_iou_xyxy, clip_xyxy, nms_xyxy, scale_xyxy

__all__ = ["box_iou_xyxy", "clip_xyxy", "nms_xyxy", "scale_xyxy"]
