"""Moved to ``veil.frames`` (bottom level, no model code); this name stays for branches in flight."""

from veil.frames import RGBFrame, as_rgb_frame

__all__ = ["RGBFrame", "as_rgb_frame"]
