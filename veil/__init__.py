"""Veil: self-hosted face and licence-plate redaction for images and video."""

__all__ = ["__version__"]

__version__ = "0.1.0"
