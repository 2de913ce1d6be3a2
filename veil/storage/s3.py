"""Blob storage in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, moto), through boto3.

This is the scaled-out ``Storage``: every worker on every machine reads and
writes the same bucket, so nothing may assume a shared disk (``local_path`` is
always ``None``). Large blobs never sit in memory whole: ``put_stream`` sends
8 MiB multipart parts as they fill, ``put_file``/``get_file`` use boto3's
managed transfers, and ``iter_range`` streams a ranged GET.

Errors are converted here, at the boundary::

    botocore ClientError NoSuchKey / 404     -> StorageNotFound(key)
    any other botocore / boto3 / s3transfer  -> StorageError("S3 <op> failed: <code>")

Messages carry the operation and the S3 error code only: never the endpoint
reply body, the credentials or the object contents.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from s3transfer.exceptions import (
    RetriesExceededError,
    S3CopyFailedError,
    S3DownloadFailedError,
    S3UploadFailedError,
)

from veil.errors import StorageError, StorageNotFound
from veil.storage.keys import check_key, check_prefix

if TYPE_CHECKING:
    from veil.settings import Settings

__all__ = ["S3Storage"]

MiB = 1 << 20
DEFAULT_PART_SIZE = 8 * MiB
MIN_PART_SIZE = 5 * MiB  # S3 rejects smaller parts, except the last one
MAX_PRESIGN_S = 7 * 24 * 3600  # SigV4 presigned URLs live at most 7 days
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# boto3 / s3transfer wrap the ClientError of a managed transfer in their own types.
_WRAPPERS = (Boto3Error, RetriesExceededError, S3CopyFailedError, S3DownloadFailedError, S3UploadFailedError)
_BOTO_ERRORS = (BotoCoreError, ClientError, *_WRAPPERS)


def _error_code(exc: BaseException) -> str:
    """The S3 error code (``NoSuchBucket``, ``AccessDenied``, ``404``), or the
    exception class name: both are safe to show, unlike ``str(exc)`` which may
    quote the endpoint's reply."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        if code:
            return str(code)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status:
            return str(status)
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, _WRAPPERS) and isinstance(cause, ClientError):
        return _error_code(cause)
    return type(exc).__name__


def _is_not_found(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        return _error_code(exc) in _NOT_FOUND_CODES
    cause = exc.__cause__ or exc.__context__
    return isinstance(exc, _WRAPPERS) and cause is not None and _is_not_found(cause)


@contextlib.contextmanager
def _boundary(op: str, key: str) -> Iterator[None]:
    """Turn boto errors raised inside the block into ``veil.errors`` types."""
    try:
        yield
    except _BOTO_ERRORS as exc:
        if _is_not_found(exc):
            raise StorageNotFound(key) from exc
        raise StorageError(f"S3 {op} failed: {_error_code(exc)}") from exc


class S3Storage:
    """``Storage`` over one bucket, with every key under ``prefix``.

    ``client`` is a boto3 S3 client; inject one (tests, custom sessions) or let
    ``from_settings`` build it. ``part_size`` is the multipart part size of both
    ``put_stream`` and ``put_file``; it is also the threshold above which they
    switch from one PUT to a multipart upload, and ``move`` from one CopyObject
    to a multipart copy. ``list_page_size`` bounds one ListObjectsV2 page and
    so one DeleteObjects batch (S3 allows at most 1000). Thread-safe: the
    instance holds no mutable state and boto3 clients may be shared by threads.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        part_size: int = DEFAULT_PART_SIZE,
        list_page_size: int = 1000,
    ) -> None:
        if not bucket:
            raise ValueError("bucket must not be empty")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be >= {MIN_PART_SIZE} bytes, got {part_size}")
        if not 1 <= list_page_size <= 1000:
            raise ValueError(f"list_page_size must be in 1..1000, got {list_page_size}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client: Any = client if client is not None else boto3.client("s3")
        self._part_size = part_size
        self._page_size = list_page_size
        self._transfer = TransferConfig(
            multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=4
        )

    def __repr__(self) -> str:
        return f"S3Storage({self.bucket!r}, {self.prefix!r})"

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        """Build from ``VEIL_STORAGE_URL=s3://bucket/prefix`` and the ``VEIL_S3_*`` settings.

        Unset credentials fall back to boto3's default chain (environment,
        shared config, instance role). With a custom endpoint (MinIO, Ceph,
        moto) the client uses path-style addressing, and sends checksums only
        where S3 requires them, since many S3-compatible servers reject the
        CRC32 trailers that boto3 sends to AWS by default.
        """
        url = settings.storage_url or ""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise StorageError("VEIL_STORAGE_URL must look like s3://bucket/prefix for S3 storage")
        custom_endpoint = settings.s3_endpoint_url is not None
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if custom_endpoint else "auto"},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            request_checksum_calculation="when_required" if custom_endpoint else "when_supported",
            response_checksum_validation="when_required" if custom_endpoint else "when_supported",
        )
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            config=config,
        )
        return cls(parts.netloc, parts.path, client=client)

    # -- keys ---------------------------------------------------------------

    def _key(self, key: str) -> str:
        """The object key for a Veil key; ``check_key`` refuses the same shapes in every backend."""
        return self._root + check_key(key)

    @property
    def _root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    # -- writes -------------------------------------------------------------

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        """Upload ``chunks`` holding at most one part (8 MiB) plus one chunk in memory.

        A stream that fits in one part is sent with one PUT. A longer one
        becomes a multipart upload, completed at the end, or aborted if the
        chunk iterator or S3 fails, so no invisible parts are left billed in
        the bucket. An exception from ``chunks`` itself (a client that went
        away) is re-raised unchanged; nothing is written to ``key`` then.
        """
        obj_key = self._key(key)
        buf = bytearray()
        total = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in chunks:
                buf += chunk
                total += len(chunk)
                while len(buf) >= self._part_size:
                    if upload_id is None:
                        with _boundary("create multipart upload", key):
                            upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=obj_key)[
                                "UploadId"
                            ]
                    parts.append(
                        self._upload_part(key, obj_key, upload_id, len(parts) + 1, buf[: self._part_size])
                    )
                    del buf[: self._part_size]
            if upload_id is None:
                with _boundary("put", key):
                    self._client.put_object(Bucket=self.bucket, Key=obj_key, Body=bytes(buf))
                return total
            if buf or not parts:
                parts.append(self._upload_part(key, obj_key, upload_id, len(parts) + 1, buf))
            with _boundary("complete multipart upload", key):
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=obj_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            return total
        except BaseException:
            if upload_id is not None:
                # Best effort: the original error matters more than a failed abort, and a
                # bucket lifecycle rule (AbortIncompleteMultipartUpload) is the backstop.
                with contextlib.suppress(*_BOTO_ERRORS):
                    self._client.abort_multipart_upload(Bucket=self.bucket, Key=obj_key, UploadId=upload_id)
            raise

    def _upload_part(
        self, key: str, obj_key: str, upload_id: str, number: int, data: bytearray
    ) -> dict[str, Any]:
        with _boundary("upload part", key):
            reply = self._client.upload_part(
                Bucket=self.bucket, Key=obj_key, UploadId=upload_id, PartNumber=number, Body=bytes(data)
            )
        part: dict[str, Any] = {"PartNumber": number, "ETag": reply["ETag"]}
        # When the client computed a flexible checksum, S3 wants it back on completion.
        for name in (
            "ChecksumCRC32",
            "ChecksumCRC32C",
            "ChecksumCRC64NVME",
            "ChecksumSHA1",
            "ChecksumSHA256",
        ):
            if name in reply:
                part[name] = reply[name]
        return part

    def put_file(self, key: str, path: Path) -> None:
        """Upload a local file; multipart (parallel parts) above ``part_size``.
        A missing local file raises ``OSError``: that is the caller's bug, not storage."""
        obj_key = self._key(key)
        if not Path(path).is_file():
            raise FileNotFoundError(f"not a file: {Path(path).name}")
        with _boundary("upload", key):
            self._client.upload_file(str(path), self.bucket, obj_key, Config=self._transfer)

    def move(self, src: str, dst: str) -> None:
        """Copy ``src`` to ``dst`` server-side, then delete ``src``.

        S3 has no rename. The new object appears atomically (readers never see
        a partial ``dst``), but the pair is not atomic: a crash in between
        leaves both keys, which retention later deletes. boto3's managed copy
        switches to a multipart copy above ``part_size``, so objects over the
        5 GiB CopyObject limit also move.
        """
        src_key, dst_key = self._key(src), self._key(dst)
        with _boundary("copy", src):
            self._client.copy(
                {"Bucket": self.bucket, "Key": src_key}, self.bucket, dst_key, Config=self._transfer
            )
        with _boundary("delete", src):
            self._client.delete_object(Bucket=self.bucket, Key=src_key)

    def delete(self, key: str) -> None:
        """Delete one key; S3 already treats a missing key as success."""
        obj_key = self._key(key)
        with _boundary("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=obj_key)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``, one DeleteObjects call per
        listing page. As in every backend, the prefix is a plain string prefix:
        end it with ``/`` to mean one folder (``jobs/1/`` spares ``jobs/10/``)."""
        full_prefix = self._root + check_prefix(prefix)
        deleted = 0
        with _boundary("delete prefix", prefix):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full_prefix, PaginationConfig={"PageSize": self._page_size}
            )
            for page in pages:
                objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if not objects:
                    continue
                reply = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                )
                errors = reply.get("Errors", [])
                if errors:
                    codes = sorted({str(e.get("Code", "unknown")) for e in errors})
                    raise StorageError(f"S3 delete prefix failed for {len(errors)} keys: {', '.join(codes)}")
                deleted += len(objects)
        return deleted

    # -- reads --------------------------------------------------------------

    def get_file(self, key: str, path: Path) -> None:
        """Download into ``path``; boto3 writes a temporary sibling and renames
        it, so ``path`` never holds a partial object."""
        obj_key = self._key(key)
        with _boundary("download", key):
            self._client.download_file(self.bucket, obj_key, str(path), Config=self._transfer)

    def local_path(self, key: str) -> Path | None:
        """Always ``None``: a bucket is not a file system."""
        self._key(key)
        return None

    def iter_range(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        """Bytes ``start``..``end`` inclusive, with one ranged GET.

        The request is sent before this returns, so a missing key raises
        ``StorageNotFound`` here and not halfway through an HTTP response that
        already sent its status line.
        """
        if start < 0 or (end is not None and end < start - 1) or chunk_size <= 0:
            raise ValueError("range must satisfy 0 <= start <= end + 1")
        obj_key = self._key(key)
        if end is not None and end == start - 1:  # an empty range, as the local backend allows
            self.size(key)
            return iter(())
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": obj_key}
        if start or end is not None:
            kwargs["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            with _boundary("get", key):
                body = self._client.get_object(**kwargs)["Body"]
        except StorageError as exc:
            # A range that starts past the end reads as empty, like a file read past its end.
            if isinstance(exc.__cause__, ClientError) and _error_code(exc.__cause__) == "InvalidRange":
                return iter(())
            raise
        return self._iter_body(key, body, chunk_size)

    @staticmethod
    def _iter_body(key: str, body: Any, chunk_size: int) -> Iterator[bytes]:
        try:
            with _boundary("get", key):
                yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def size(self, key: str) -> int:
        obj_key = self._key(key)
        with _boundary("head", key):
            return int(self._client.head_object(Bucket=self.bucket, Key=obj_key)["ContentLength"])

    def exists(self, key: str) -> bool:
        """``False`` for a missing key. HEAD replies carry no error body, so a
        missing bucket also reads as ``False`` here; ``put_*`` then fail loudly."""
        try:
            self.size(key)
        except StorageNotFound:
            return False
        return True

    def presign(self, key: str, expires_s: int) -> str | None:
        """A presigned GET URL, valid ``expires_s`` seconds (1 s .. 7 days).

        The URL names the endpoint the client talks to: with an internal
        endpoint (``http://minio:9000``) it only works where that name resolves.
        Signing is local; the key's existence is not checked.
        """
        if not 1 <= expires_s <= MAX_PRESIGN_S:
            raise ValueError(f"expires_s must be in 1..{MAX_PRESIGN_S}, got {expires_s}")
        obj_key = self._key(key)
        with _boundary("presign", key):
            url: str = self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": obj_key}, ExpiresIn=expires_s
            )
        return url
