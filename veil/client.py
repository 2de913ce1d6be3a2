"""A small synchronous Python client for the Veil API (httpx).

It covers the job lifecycle an integrator needs: submit a file (streamed, never read whole), wait for the
result, download it, read the report, list jobs, cancel, delete and create signed links::

    from veil.client import Client

    with Client("http://127.0.0.1:8000", api_key) as veil:
        job = veil.submit("in.jpg", {"categories": {"face": {}, "license_plate": {}}}, wait=30)
        job = veil.wait(job.id, timeout=600)
        veil.download(job.id, "out.jpg")

Every non-2xx answer becomes a ``VeilAPIError`` carrying the API's stable ``code``, its ``message`` and the
``request_id`` to quote in a support request; transport trouble becomes ``VeilConnectionError``. Response
models accept fields they do not know, so a newer server does not break an older client. The client sends
uploads under a neutral file name (``upload.<ext>``): file names often identify people.
"""

from __future__ import annotations

import json
import math
import mimetypes
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from veil import __version__
from veil.errors import VeilError
from veil.spec import RedactionSpec

__all__ = [
    "TERMINAL_STATES",
    "Client",
    "Job",
    "JobWaitTimeout",
    "Link",
    "VeilAPIError",
    "VeilConnectionError",
]

TERMINAL_STATES = frozenset({"succeeded", "failed", "canceled"})
_MAX_SERVER_WAIT_S = 30
"""Longest single long-poll the client asks for; longer waits are several requests."""
_CHUNK = 1 << 20


class VeilAPIError(VeilError):
    """The API answered with an error. ``code`` is the API's stable error code (``not_found``, …)."""

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        request_id: str | None = None,
        *,
        retry_after_s: float | None = None,
    ) -> None:
        detail = f"{code}: {message}" + (f" (request {request_id})" if request_id else "")
        super().__init__(detail if status is None else f"HTTP {status} {detail}")
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after_s = retry_after_s
        """Seconds the server asked to wait before retrying (429, 503), if it said."""


class VeilConnectionError(VeilAPIError):
    """No HTTP answer: connection refused, DNS failure, timeout, broken connection."""

    def __init__(self, message: str) -> None:
        super().__init__(None, "connection_error", message)


class JobWaitTimeout(TimeoutError):
    """``Client.wait`` ran out of time; ``job`` is the last state seen (the job keeps running)."""

    def __init__(self, job: Job, timeout_s: float) -> None:
        super().__init__(f"job {job.id} still {job.state} after {timeout_s:g} s")
        self.job = job


class _Tolerant(BaseModel):
    # Responses, not requests: unknown fields from a newer server are kept (``model_extra``), not refused.
    model_config = ConfigDict(extra="allow", frozen=True)


class Job(_Tolerant):
    """A job as the API returns it. Fields beyond these are kept and reachable as attributes."""

    id: str = Field(description="Job id.")
    state: str = Field(description="queued, running, succeeded, failed or canceled.")
    progress: float = Field(0.0, ge=0.0, le=100.0, description="Percent done.")
    result_url: str | None = Field(None, description="Where to download the result once succeeded.")
    error: dict[str, Any] | None = Field(None, description="`code` and `message` when failed.")
    mode: str | None = Field(None, description="`redact` or `detect`.")
    counts: dict[str, int] = Field(default_factory=dict, description="Tracks or boxes per category.")
    created_at: datetime | None = Field(None, description="When the job was accepted (UTC).")
    warnings: list[str] = Field(
        default_factory=list, description="Parts of the spec this input cannot use (e.g. video-only options)."
    )

    @property
    def terminal(self) -> bool:
        """True once the job will not change again (succeeded, failed or canceled)."""
        return self.state in TERMINAL_STATES


class Link(_Tolerant):
    """A signed download URL that works without an API key until ``expires_at``."""

    url: str = Field(description="Absolute or server-relative signed URL.")
    expires_at: str | None = Field(None, description="ISO 8601 expiry time.")


def _error_from(response: httpx.Response) -> VeilAPIError:
    """Map ``{"error": {"code", "message", "request_id"}}`` (or anything else) to ``VeilAPIError``."""
    code, message = f"http_{response.status_code}", response.reason_phrase or "error"
    request_id = response.headers.get("X-Request-ID")
    try:
        payload = response.json()
    except (ValueError, UnicodeDecodeError):
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
        request_id = str(error.get("request_id") or request_id or "") or None
    retry_after = response.headers.get("Retry-After", "")
    return VeilAPIError(
        response.status_code,
        code,
        message,
        request_id,
        retry_after_s=float(retry_after) if retry_after.isdigit() else None,
    )


def _job_path(job_id: str, *rest: str) -> str:
    return "/".join(["/v1/jobs", quote(job_id, safe=""), *rest])


def _spec_json(spec: RedactionSpec | Mapping[str, Any] | None) -> str | None:
    if spec is None:
        return None
    if isinstance(spec, RedactionSpec):
        # Only what the caller set: the server applies its own defaults for the rest.
        return spec.model_dump_json(exclude_unset=True)
    return json.dumps(dict(spec))


class Client:
    """Synchronous Veil API client. Use as a context manager, or call ``close()``.

    ``transport`` replaces the network (e.g. ``httpx.MockTransport`` in a caller's tests, or a
    transport with retries). ``timeout`` bounds each request; long-polls get their wait added on top.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={
                "Authorization": f"Bearer {api_key.strip()}",  # keys read from files end in a newline
                "User-Agent": f"veil-client/{__version__}",
            },
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing ------------------------------------------------------------------------------------------

    def _send(self, request: httpx.Request, *, stream: bool = False, follow: bool = False) -> httpx.Response:
        try:
            response = self._http.send(request, stream=stream, follow_redirects=follow)
        except httpx.TimeoutException as exc:
            raise VeilConnectionError(f"request timed out: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            where = self._http.base_url.copy_with(path="/", query=None)
            raise VeilConnectionError(f"cannot reach the Veil API at {where}: {type(exc).__name__}") from exc
        if response.is_success:
            return response
        if stream:
            response.read()
            response.close()
        raise _error_from(response)

    def _request(self, method: str, path: str, *, wait_s: float = 0.0, **kwargs: Any) -> httpx.Response:
        timeout = httpx.Timeout(self._timeout + wait_s) if wait_s else httpx.Timeout(self._timeout)
        return self._send(self._http.build_request(method, path, timeout=timeout, **kwargs))

    def _job(self, response: httpx.Response) -> Job:
        try:
            return Job.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise VeilAPIError(response.status_code, "bad_response", "the API sent no job object") from exc

    # -- jobs ----------------------------------------------------------------------------------------------

    def submit(
        self,
        path: str | os.PathLike[str],
        spec: RedactionSpec | Mapping[str, Any] | None = None,
        *,
        wait: float | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Upload ``path`` (streamed) with ``spec`` and return the job.

        With ``wait``, the server holds the request up to that many seconds and returns the finished job
        (or the still-running one at the deadline). ``idempotency_key`` makes a retried submit return the
        first job instead of creating a second one.
        """
        source = Path(path)
        suffix = source.suffix.lower()
        content_type = mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream"
        params: dict[str, int] = {}
        if wait is not None:
            params["wait"] = max(0, math.ceil(wait))
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        spec_json = _spec_json(spec)
        data = {"spec": spec_json} if spec_json is not None else {}
        try:
            upload = source.open("rb")
        except OSError as exc:
            raise VeilError(f"cannot read the input file: {exc.strerror or type(exc).__name__}") from exc
        with upload:
            response = self._request(
                "POST",
                "/v1/jobs",
                wait_s=float(params.get("wait", 0)),
                params=params,
                headers=headers,
                data=data,
                files={"file": (f"upload{suffix}", upload, content_type)},
            )
        return self._job(response)

    def get(self, job_id: str) -> Job:
        return self._job(self._request("GET", _job_path(job_id)))

    def wait(self, job_id: str, timeout: float = 600.0, *, poll: float = 1.0) -> Job:
        """Return the job once it is terminal; raise ``JobWaitTimeout`` after ``timeout`` seconds.

        Asks the server to long-poll (``?wait=``); a server that answers at once is polled every ``poll``
        seconds instead.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            server_wait = max(0, min(_MAX_SERVER_WAIT_S, math.floor(remaining)))
            started = time.monotonic()
            params = {"wait": server_wait} if server_wait else {}
            job = self._job(self._request("GET", _job_path(job_id), wait_s=server_wait, params=params))
            if job.terminal:
                return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JobWaitTimeout(job, timeout)
            took = time.monotonic() - started
            if took < poll:
                time.sleep(min(poll - took, remaining))

    def download(self, job_id: str, dst: str | os.PathLike[str]) -> Path:
        """Stream the result to ``dst`` (written to ``dst.part`` first, then renamed) and return its path."""
        target = Path(dst)
        partial = target.with_name(target.name + ".part")
        request = self._http.build_request("GET", _job_path(job_id, "result"))
        response = self._send(request, stream=True, follow=True)
        try:
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
            partial.replace(target)
        except httpx.HTTPError as exc:
            partial.unlink(missing_ok=True)
            raise VeilConnectionError(f"download interrupted: {type(exc).__name__}") from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            response.close()
        return target

    # -- batches -------------------------------------------------------------------------------------------

    def submit_batch(
        self, paths: Sequence[str | os.PathLike[str]], spec: RedactionSpec | Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Upload several files (streamed) as one batch with one spec; return the batch object."""
        spec_json = _spec_json(spec)
        data = {"spec": spec_json} if spec_json is not None else {}
        with ExitStack() as stack:
            files = []
            for path in paths:
                source = Path(path)
                suffix = source.suffix.lower()
                content_type = mimetypes.guess_type(f"x{suffix}")[0] or "application/octet-stream"
                try:
                    handle = stack.enter_context(source.open("rb"))
                except OSError as exc:
                    reason = exc.strerror or type(exc).__name__
                    raise VeilError(f"cannot read {source.name}: {reason}") from exc
                files.append(("file", (f"upload{suffix}", handle, content_type)))
            payload = self._request("POST", "/v1/batches", data=data, files=files).json()
        return dict(payload)

    def batch(self, batch_id: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/v1/batches/{quote(batch_id, safe='')}").json())

    def wait_batch(self, batch_id: str, timeout: float = 600.0, *, poll: float = 1.0) -> dict[str, Any]:
        """The batch once every job is finished; ``VeilError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            batch = self.batch(batch_id)
            if batch.get("state") == "finished":
                return batch
            if time.monotonic() >= deadline:
                raise VeilError(f"batch {batch_id} is still running after {timeout:.0f} s")
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))

    def download_batch(self, batch_id: str, dst: str | os.PathLike[str]) -> Path:
        """Stream the ZIP of a finished batch's results to ``dst`` (via ``dst.part``)."""
        target = Path(dst)
        partial = target.with_name(target.name + ".part")
        request = self._http.build_request("GET", f"/v1/batches/{quote(batch_id, safe='')}/results.zip")
        response = self._send(request, stream=True)
        try:
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            response.close()
        return target

    def report(self, job_id: str) -> dict[str, Any]:
        """The JSON report (counts, tracks, timings, hashes) as a dict."""
        payload = self._request("GET", _job_path(job_id, "report")).json()
        if not isinstance(payload, dict):
            raise VeilAPIError(200, "bad_response", "the API sent no report object")
        return payload

    def thumbnail(self, job_id: str, track_id: int) -> bytes:
        """The JPEG thumbnail of one track of a succeeded ``detect`` job, for review."""
        return self._request("GET", _job_path(job_id, "tracks", str(int(track_id)), "thumbnail")).content

    def iter_jobs(self, *, state: str | None = None, limit: int = 50, **filters: str | int) -> Iterator[Job]:
        """Every job visible to the key, newest first, following the cursor page by page."""
        params: dict[str, str | int] = {"limit": limit, **filters}
        if state is not None:
            params["state"] = state
        while True:
            page = self._request("GET", "/v1/jobs", params=params).json()
            items = page.get("data") or []
            for item in items:
                yield Job.model_validate(item)
            cursor = page.get("next_cursor")
            if not cursor or not items:
                return
            params["cursor"] = cursor

    def cancel(self, job_id: str) -> Job:
        return self._job(self._request("POST", _job_path(job_id, "cancel")))

    def delete(self, job_id: str) -> None:
        """Delete the job and its blobs."""
        self._request("DELETE", _job_path(job_id))

    def create_link(self, job_id: str, *, expires_in_s: int | None = None) -> Link:
        """A signed download URL for the result that works without a key (default expiry: 24 h)."""
        body = {"expires_in": expires_in_s} if expires_in_s is not None else {}
        payload = self._request("POST", _job_path(job_id, "links"), json=body).json()
        return Link.model_validate(payload)
