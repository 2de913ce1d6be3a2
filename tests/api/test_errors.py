"""One table maps every error code to a status; every ``veil.errors`` code is in it on purpose."""

from __future__ import annotations

import veil.errors
from veil.api.errors import STATUS_BY_CODE, status_for

SERVER_SIDE = {"internal_error", "model_error", "model_corrupt", "unsafe_model", "storage_error", "job_error"}


def _codes() -> set[str]:
    classes = [getattr(veil.errors, name) for name in veil.errors.__all__]
    return {cls.code for cls in classes if isinstance(cls, type) and issubclass(cls, veil.errors.VeilError)}


def test_every_domain_code_has_a_deliberate_status() -> None:
    unmapped = _codes() - set(STATUS_BY_CODE) - SERVER_SIDE
    assert unmapped == set(), f"map these codes in veil.api.errors: {sorted(unmapped)}"


def test_client_errors_are_4xx_and_capacity_errors_are_503() -> None:
    assert status_for("invalid_spec") == 422
    assert status_for("webhook_url_refused") == 422
    assert status_for("unsupported_media") == 415
    assert status_for("media_too_large") == 422
    assert status_for("not_found") == 404
    assert status_for("queue_full") == 503
    assert status_for("something_new") == 500
