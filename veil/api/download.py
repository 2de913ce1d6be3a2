"""Streaming a job's files from storage, with HTTP Range, for the authenticated routes and signed links."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response, StreamingResponse

from veil.api.errors import Expired, PreviewNotFound, error_responses
from veil.api.ranges import parse_range
from veil.errors import JobConflict, StorageNotFound
from veil.jobs import blobs
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow
from veil.media.formats import SOURCE_CONTENT_TYPES
from veil.storage import Storage

__all__ = [
    "check_result_available",
    "file_responses",
    "preview_key_of",
    "preview_response",
    "result_response",
    "source_response",
]


def file_responses(description: str, *errors: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a route that streams a file: 200 (the whole file, ``description``), 206
    (one Range) and the ``errors``."""
    return {
        200: {"description": description, "content": {"application/octet-stream": {}}},
        206: {"description": "Part of the file (Range).", "content": {"application/octet-stream": {}}},
        **error_responses(*errors),
    }


def check_result_available(row: JobRow) -> str:
    """The output key of ``row``; 409 while there is none yet, 410 once retention deleted it."""
    if row.mode == "detect":
        raise JobConflict("detect jobs have no result file; read the report")
    if row.purged_at is not None:
        raise Expired("retention deleted this job's result")
    if row.state is not JobState.SUCCEEDED or row.output_key is None:
        raise JobConflict(f"the job is {row.state.value}; there is no result")
    return row.output_key


def _suffix(key: str) -> str:
    return key[key.rfind(".") :].lower() if "." in key.rsplit("/", 1)[-1] else ""


def result_response(
    storage: Storage, row: JobRow, *, range_header: str | None, head: bool = False
) -> Response:
    key = check_result_available(row)
    try:
        size = storage.size(key)
    except StorageNotFound as exc:
        raise Expired("the result is no longer stored") from exc
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'attachment; filename="{row.id}{_suffix(key)}"',
        "Cache-Control": "private, no-store",
    }
    if row.output_sha256:
        headers["ETag"] = f'"{row.output_sha256}"'
    media_type = row.output_content_type or "application/octet-stream"
    return _ranged(storage, key, size, headers, media_type, range_header=range_header, head=head)


def source_response(
    storage: Storage, row: JobRow, *, range_header: str | None, head: bool = False
) -> Response:
    """The job's input as uploaded (for a ``source_job`` redaction, the detect job's input)."""
    if row.purged_at is not None:
        raise Expired("retention deleted this job's input")
    try:
        size = storage.size(row.input_key)
    except StorageNotFound as exc:
        raise Expired("the input is no longer stored") from exc
    suffix = _suffix(row.input_key)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'inline; filename="{row.id}-source{suffix}"',
        "Cache-Control": "private, no-store",
        "ETag": f'"{row.input_sha256}"',
    }
    media_type = SOURCE_CONTENT_TYPES.get(suffix, "application/octet-stream")
    return _ranged(storage, row.input_key, size, headers, media_type, range_header=range_header, head=head)


def preview_key_of(storage: Storage, row: JobRow) -> str:
    """The key of ``row``'s preview (video or still); 404 when it has none, 410 once retention deleted it."""
    return _find_preview(storage, row)[0]


def _find_preview(storage: Storage, row: JobRow) -> tuple[str, int]:
    """The key and size of ``row``'s preview, see ``preview_key_of``."""
    if row.purged_at is not None:
        raise Expired("retention deleted this job's files")
    for suffix in (".mp4", ".jpg"):
        key = blobs.preview_key(row.id, suffix)
        try:
            return key, storage.size(key)
        except StorageNotFound:
            continue
    raise PreviewNotFound(
        "this job has no preview: detect jobs make one only of media browsers cannot show as it is"
    )


def preview_response(
    storage: Storage, row: JobRow, *, range_header: str | None, head: bool = False
) -> Response:
    """A detect job's copy of its media that browsers can show, for the review page when they cannot show
    the source: a video as H.264 MP4 with every frame at its own time (MPEG-TS, AVI, WMV, ...), a still as
    JPEG (HEIC, TIFF)."""
    key, size = _find_preview(storage, row)
    suffix = _suffix(key)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'inline; filename="{row.id}-preview{suffix}"',
        "Cache-Control": "private, no-store",
    }
    media_type = SOURCE_CONTENT_TYPES.get(suffix, "application/octet-stream")
    return _ranged(storage, key, size, headers, media_type, range_header=range_header, head=head)


def _ranged(
    storage: Storage,
    key: str,
    size: int,
    headers: dict[str, str],
    media_type: str,
    *,
    range_header: str | None,
    head: bool,
) -> Response:
    byte_range = parse_range(range_header, size)
    if byte_range is None:
        first, last, status = 0, size - 1, 200
    else:
        first, last = byte_range
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(max(last - first + 1, 0))
    if head or size == 0:
        return Response(status_code=status, headers=headers, media_type=media_type)
    return StreamingResponse(
        storage.iter_range(key, first, last), status_code=status, headers=headers, media_type=media_type
    )
