"""Every error Veil raises on purpose, with a stable machine-readable code.

The hierarchy mirrors the layers, so a caller can catch as broadly or as
narrowly as it needs::

    VeilError                       code
    ├── MediaError                  media_error
    │   ├── UnsupportedMedia        unsupported_media   (not media, or no decoder)
    │   ├── CorruptMedia            corrupt_media       (truncated, undecodable)
    │   └── MediaTooLarge           media_too_large     (pixels, duration, frames)
    ├── ModelError                  model_error
    │   ├── ModelMissing            model_missing       (run `veil models pull`)
    │   ├── ModelCorrupt            model_corrupt       (sha256 mismatch)
    │   └── UnsafeModelFile         unsafe_model        (hostile pickle)
    ├── SpecError                   invalid_spec
    │   └── WebhookRefused          webhook_url_refused (scheme, credentials, private target)
    ├── StorageError                storage_error
    │   ├── StorageNotFound         not_found
    │   ├── StorageFull             storage_full        (no space: data disk, scratch or database)
    │   └── StorageUnavailable      unavailable         (the job database cannot be reached right now)
    ├── JobError                    job_error
    │   ├── JobNotFound             not_found
    │   ├── JobConflict             conflict
    │   └── JobCanceled             canceled
    └── QueueFull                   queue_full

Messages never contain file contents, detections or secrets. They may name
the kind of problem and a number (a size, a limit), never personal data.
HTTP status mapping lives in one place: ``veil.api.errors``.
"""

from __future__ import annotations

__all__ = [
    "CorruptMedia",
    "JobCanceled",
    "JobConflict",
    "JobError",
    "JobNotFound",
    "MediaError",
    "MediaTooLarge",
    "ModelCorrupt",
    "ModelError",
    "ModelMissing",
    "QueueFull",
    "SpecError",
    "StorageError",
    "StorageFull",
    "StorageNotFound",
    "StorageUnavailable",
    "UnsafeModelFile",
    "UnsupportedMedia",
    "VeilError",
    "WebhookRefused",
]


class VeilError(Exception):
    """Base class. ``code`` is stable and safe to show to API clients."""

    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MediaError(VeilError):
    code = "media_error"


class UnsupportedMedia(MediaError):
    code = "unsupported_media"


class CorruptMedia(MediaError):
    code = "corrupt_media"


class MediaTooLarge(MediaError):
    code = "media_too_large"


class ModelError(VeilError):
    code = "model_error"


class ModelMissing(ModelError):
    code = "model_missing"


class ModelCorrupt(ModelError):
    code = "model_corrupt"


class UnsafeModelFile(ModelError):
    code = "unsafe_model"


class SpecError(VeilError):
    code = "invalid_spec"


class WebhookRefused(SpecError):
    """The webhook URL is not one Veil will call: wrong scheme, credentials in it, or a host that
    resolves to a private, loopback, link-local or metadata address (server-side request forgery)."""

    code = "webhook_url_refused"


class StorageError(VeilError):
    code = "storage_error"


class StorageNotFound(StorageError):
    code = "not_found"


class StorageFull(StorageError):
    """No space left where Veil writes: the data disk, the scratch directory or the job database."""

    code = "storage_full"


class StorageUnavailable(StorageError):
    """The job database cannot be reached right now (restarting, connection lost): try again shortly."""

    code = "unavailable"


class JobError(VeilError):
    code = "job_error"


class JobNotFound(JobError):
    code = "not_found"


class JobConflict(JobError):
    code = "conflict"


class JobCanceled(JobError):
    code = "canceled"


class QueueFull(VeilError):
    code = "queue_full"
