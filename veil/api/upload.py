"""Streaming ``multipart/form-data`` reader for ``POST /v1/jobs``.

Starlette's form parser has no limit on file size and buffers the whole body before
the handler runs. This reader feeds the request stream chunk by chunk into
``python_multipart`` and writes the ``file`` part straight to a scratch file while
hashing it, so memory stays flat whatever the upload size and an upload over
``VEIL_MAX_UPLOAD_MB`` is refused (413) as soon as it crosses the limit, or at once
when ``Content-Length`` already says so.

Fields: ``file`` (the media, optional only with ``source_job``) and ``spec`` (JSON
text, at most 1 MiB). Anything else is a 400 ``unknown_parameter`` naming every unknown field (with
the Veil equivalent of names other redaction APIs use), so typos do not pass silently.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from veil.api.errors import BadRequest, ClientGone, UnsupportedContentType, UploadTooLarge
from veil.api.params import UnknownParameter, describe_unknown
from veil.errors import StorageError, StorageFull
from veil.jobs.blobs import MEDIA_SUFFIXES
from veil.private_files import NO_SPACE_ERRNOS, make_private_dirs

__all__ = ["UPLOAD_REQUEST_BODY", "Upload", "receive_upload", "receive_uploads"]

log = logging.getLogger(__name__)
_NAME_PARAM = re.compile(rb'(?:^|;)\s*name\s*=\s*"?([A-Za-z0-9_-]{1,40})"?\s*(?:;|$)')

MAX_FIELD_BYTES = 1 << 20
_FIELDS = ("file", "spec")

UPLOAD_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {"$ref": "#/components/schemas/JobCreate"},
            "encoding": {"spec": {"contentType": "application/json"}},
        }
    },
}
"""The OpenAPI ``requestBody`` of the form this module reads (``POST /v1/jobs`` and ``/v1/batches``): the
routes read the stream themselves, so FastAPI cannot derive it."""


@dataclass
class Upload:
    """What the client sent. ``path`` is a scratch file the caller must delete (``discard``)."""

    path: Path | None = None
    size: int = 0
    sha256: str = ""
    suffix: str = ""
    """The upload's file-name suffix if it is a known media suffix (the name itself is dropped)."""
    spec_text: str | None = None

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    field_name: bytearray = field(default_factory=bytearray)
    field_value: bytearray = field(default_factory=bytearray)
    name: str = ""
    data: bytearray = field(default_factory=bytearray)


class _Reader:
    def __init__(self, *, scratch_dir: Path, max_bytes: int, max_files: int = 1) -> None:
        self.upload = Upload()
        self.earlier: list[Upload] = []
        """Files before the current one (batches send several)."""
        self.spec_text: str | None = None
        self._max_files = max_files
        self._scratch_dir = scratch_dir
        self._max_bytes = max_bytes
        self._part = _Part()
        self._hash = hashlib.sha256()
        self._fh: int | None = None
        self.finished = False
        self.unknown_fields: list[str] = []

    # python_multipart callbacks -------------------------------------------------------------------------
    def on_part_begin(self) -> None:
        self._part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._part.field_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._part.field_value += data[start:end]

    def on_header_end(self) -> None:
        self._part.headers[bytes(self._part.field_name).lower()] = bytes(self._part.field_value)
        self._part.field_name = bytearray()
        self._part.field_value = bytearray()

    def on_headers_finished(self) -> None:
        disposition = self._part.headers.get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name not in _FIELDS:
            # An unescaped `"` in a file name before `name=` derails the parameter parser; a field
            # name never holds one, so look for it directly.
            found = _NAME_PARAM.search(disposition)
            name = found.group(1).decode("ascii") if found else name
        self._part.name = name
        if name not in _FIELDS:
            if name not in self.unknown_fields and len(self.unknown_fields) < 10:
                self.unknown_fields.append(name)  # named in one 400 once the body is read
            return
        if name == "file":
            if self.upload.path is not None:
                if len(self.earlier) + 1 >= self._max_files:
                    raise BadRequest(
                        "send one `file` per job (POST /v1/batches takes several)"
                        if self._max_files == 1
                        else f"send at most {self._max_files} files per batch"
                    )
                self.earlier.append(self.upload)
                self.upload = Upload()
                self._hash = hashlib.sha256()
            filename = options.get(b"filename", b"").decode("utf-8", "replace")
            suffix = os.path.splitext(filename)[1].lower()
            self.upload.suffix = suffix if suffix in MEDIA_SUFFIXES else ""
            make_private_dirs(self._scratch_dir)
            fd, path = tempfile.mkstemp(prefix="upload-", suffix=self.upload.suffix, dir=self._scratch_dir)
            self._fh = fd
            self.upload.path = Path(path)
        elif self.spec_text is not None:
            raise BadRequest("send one `spec` per job")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._part.name == "file":
            self.upload.size += len(chunk)
            if self.upload.size > self._max_bytes:
                raise UploadTooLarge(f"upload exceeds the limit of {self._max_bytes // (1 << 20)} MB")
            self._hash.update(chunk)
            assert self._fh is not None
            view = memoryview(chunk)
            while view:
                written = os.write(self._fh, view)
                view = view[written:]
        elif self._part.name == "spec":
            if len(self._part.data) + len(chunk) > MAX_FIELD_BYTES:
                raise BadRequest("the `spec` field is larger than 1 MiB")
            self._part.data += chunk

    def on_part_end(self) -> None:
        if self._part.name == "file":
            self.close_file()
            self.upload.sha256 = self._hash.hexdigest()
        elif self._part.name == "spec":
            try:
                self.spec_text = self._part.data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadRequest("the `spec` field must be UTF-8 JSON") from exc

    def on_end(self) -> None:
        self.finished = True

    def close_file(self) -> None:
        if self._fh is not None:
            os.close(self._fh)
            self._fh = None

    def all_files(self) -> list[Upload]:
        files = [*self.earlier, self.upload] if self.upload.path is not None else list(self.earlier)
        for upload in files:
            upload.spec_text = self.spec_text
        return files

    def discard(self) -> None:
        for upload in [*self.earlier, self.upload]:
            upload.discard()


async def receive_upload(request: Request, *, scratch_dir: Path, max_bytes: int) -> Upload:
    """Read the multipart body of ``request``; raise ``UnsupportedContentType``, ``BadRequest`` or
    ``UploadTooLarge``. On success the caller owns ``Upload.path``."""
    uploads, spec_text = await receive_uploads(
        request, scratch_dir=scratch_dir, max_bytes=max_bytes, max_files=1
    )
    return uploads[0] if uploads else Upload(spec_text=spec_text)


async def receive_uploads(
    request: Request, *, scratch_dir: Path, max_bytes: int, max_files: int
) -> tuple[list[Upload], str | None]:
    """Several ``file`` parts (each up to ``max_bytes``) and one ``spec``: the files in the order sent,
    and the spec text. The caller owns every ``Upload.path``."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UnsupportedContentType("send the job as multipart/form-data with fields `file` and `spec`")
    declared = request.headers.get("content-length")
    limit = max_bytes * max_files + MAX_FIELD_BYTES + 65536 * max_files
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadTooLarge(f"upload exceeds the limit of {max_bytes // (1 << 20)} MB per file")

    reader = _Reader(scratch_dir=scratch_dir, max_bytes=max_bytes, max_files=max_files)
    callbacks = {
        name: getattr(reader, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
            "on_end",
        )
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
        parser.finalize()
        if not reader.finished:
            raise BadRequest("the multipart body ended early")
    except BaseException as exc:
        reader.close_file()
        reader.discard()
        if isinstance(exc, FormParserError):  # a malformed body, or a boundary the parser refuses
            raise BadRequest("malformed multipart body") from exc
        if isinstance(exc, ClientDisconnect):
            log.info("client disconnected during upload", extra={"request_id": _request_id(request)})
            raise ClientGone("the client disconnected before the upload finished") from None
        if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
            raise StorageFull("no space left for the upload") from exc
        if isinstance(exc, OSError):
            raise StorageError("the upload could not be stored") from exc
        raise
    reader.close_file()
    if reader.unknown_fields:
        reader.discard()
        raise UnknownParameter(
            describe_unknown(reader.unknown_fields, what="form field", accepted=list(_FIELDS))
        )
    return reader.all_files(), reader.spec_text


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or "-")
