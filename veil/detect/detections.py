"""Moved to ``veil.detections`` (bottom level, no model code); this name stays for branches in flight."""

from veil.detections import Detections

__all__ = ["Detections"]
