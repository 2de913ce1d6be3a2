"""Static assets of the review page, served by the API at ``/review`` (no build step, vanilla JS)."""

__all__: list[str] = []
