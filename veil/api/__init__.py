"""The HTTP API (FastAPI). ``create_app(settings)`` builds it; ``/openapi.json`` is the contract."""

from veil.api.app import create_app

__all__ = ["create_app"]
