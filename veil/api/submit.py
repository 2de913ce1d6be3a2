"""Accepting a job: validate the spec, check the webhook target and the source job, probe the
upload, honour ``Idempotency-Key``, store the input, and write the ``queued`` row.

Runs in a worker thread (probing and copying block). The caller enqueues the id only
after this returns, i.e. after the row is committed, so a worker never looks for a
job that is not there yet.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from veil.api.errors import BadRequest
from veil.api.params import equivalent_of
from veil.api.services import Services
from veil.api.upload import Upload
from veil.auth.audit import append_audit
from veil.auth.secrets import seal_headers
from veil.errors import JobConflict, QueueFull, SpecError, StorageNotFound, UnsupportedMedia
from veil.ids import new_id
from veil.jobs import blobs, store
from veil.jobs.states import JobState
from veil.jobs.tables import JobRow
from veil.jobs.webhooks import validate_webhook_url
from veil.spec import RedactionSpec

__all__ = ["BatchSlot", "Submitted", "parse_spec", "require_queue_room", "submit_job"]


@dataclass(frozen=True)
class Submitted:
    job: JobRow
    created: bool
    """``False`` when an ``Idempotency-Key`` replay returned the job made the first time."""


@dataclass(frozen=True)
class BatchSlot:
    """Where a job sits in a batch. Its jobs send no webhook of their own: the first one holds the batch's
    webhook (sent once every job is finished)."""

    batch_id: str
    index: int


def require_queue_room(services: Services, *, jobs: int, refusal: str) -> None:
    """``QueueFull`` saying ``refusal`` unless ``jobs`` more queued jobs fit in ``VEIL_QUEUE_MAX`` (the job
    and batch routes both ask)."""
    with services.db.begin() as session:
        queued = store.count_queued(session=session)
    if queued + jobs > services.settings.queue_max:
        raise QueueFull(refusal)


def parse_spec(text: str | None) -> RedactionSpec:
    """The spec from the ``spec`` field (absent: all defaults). ``SpecError`` names the bad fields only."""
    try:
        return RedactionSpec.model_validate_json(text or "{}")
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:5]:
            loc = error.get("loc", ())
            where = ".".join(str(part) for part in loc) or "spec"
            hint = equivalent_of(str(loc[-1])) if loc and error.get("type") == "extra_forbidden" else None
            problems.append(f"{where}: {error.get('msg', 'invalid')}" + (f" (Veil: {hint})" if hint else ""))
        raise SpecError("invalid spec: " + "; ".join(problems)) from exc


def _fingerprint(stored: dict[str, Any], headers_mac: str, input_sha256: str) -> str:
    canonical = json.dumps(stored, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{canonical}\n{headers_mac}\n{input_sha256}".encode()).hexdigest()


def _replay(existing: JobRow, fingerprint: str) -> Submitted:
    if existing.request_fingerprint != fingerprint:
        raise JobConflict("this Idempotency-Key was already used with a different file or spec")
    return Submitted(job=existing, created=False)


def _check_track_ids(services: Services, source: JobRow, track_ids: list[int]) -> None:
    """``SpecError`` (422) naming the filter's track ids that the source job's report does not have:
    a filter of unknown ids would otherwise mask nothing, or everything, without a word."""
    if source.report_key is None:
        raise SpecError("source_job has no report; run detection again")
    try:
        text = b"".join(services.storage.iter_range(source.report_key))
    except StorageNotFound as exc:
        raise SpecError("source_job's report is no longer stored; run detection again") from exc
    known = {int(t["id"]) for t in json.loads(text).get("tracks", [])}
    unknown = sorted(set(track_ids) - known)
    if unknown:
        shown = ", ".join(str(i) for i in unknown[:20]) + (" …" if len(unknown) > 20 else "")
        raise SpecError(
            f"filter.track_ids/track_styles: unknown track ids {shown} (source_job has {len(known)} tracks)"
        )


def submit_job(
    services: Services,
    *,
    tenant_id: str,
    key_id: str,
    upload: Upload,
    idempotency_key: str | None,
    request_id: str,
    batch: BatchSlot | None = None,
) -> Submitted:
    from veil.media import media_summary, probe

    settings = services.settings
    spec = parse_spec(upload.spec_text)
    nothing = spec.masks_nothing()
    if nothing is not None:
        raise SpecError(nothing)
    available = services.runner.available_categories()
    unknown = sorted(set(spec.enabled_categories()) - set(available))
    if unknown:
        raise SpecError(f"unknown categories {', '.join(unknown)}; available: {', '.join(available)}")
    from veil.pipeline.plan import check_output, check_spec

    check_spec(spec)  # what only the detectors can judge (a detect_scale too coarse for small faces)
    if spec.webhook is not None:
        validate_webhook_url(str(spec.webhook.url), allow_private=settings.webhook_allow_private)

    source: JobRow | None = None
    if spec.source_job is not None:
        with services.db.begin() as session:
            source = store.get_job(session=session, job_id=spec.source_job, tenant_id=tenant_id)
        if source is None:
            raise SpecError("source_job: no such job")
        if source.mode != "detect":
            raise SpecError("source_job must be a detect job")
        if source.state is not JobState.SUCCEEDED:
            raise JobConflict(f"source_job is {source.state.value}; wait until it has succeeded")
        if source.purged_at is not None:
            raise SpecError("source_job has expired; run detection again")
        named = (spec.filter.track_ids if spec.filter is not None else []) + [
            t.track_id for t in spec.track_styles
        ]
        if named:
            _check_track_ids(services, source, named)
        if upload.path is not None and upload.sha256 != source.input_sha256:
            raise SpecError(
                "with source_job, omit `file` (the source job's input is used) or send the same file"
            )
    elif upload.path is None:
        raise BadRequest("send the media in the `file` field")

    stored = spec.model_dump(mode="json")
    sealed, headers_mac = None, ""
    if spec.webhook is not None and spec.webhook.headers:
        headers = dict(spec.webhook.headers)
        sealed = seal_headers(services.server_secret, headers)
        canonical = json.dumps(headers, sort_keys=True).encode()
        headers_mac = hmac.new(services.server_secret, canonical, hashlib.sha256).hexdigest()
        stored["webhook"]["headers"] = None  # the values live sealed in their own column only
    batch_webhook_url = None
    if batch is not None and spec.webhook is not None:
        stored["webhook"] = None  # the batch sends one webhook, from its first job's row
        batch_webhook_url = str(spec.webhook.url) if batch.index == 0 else None
        sealed = sealed if batch.index == 0 else None
    input_sha256 = upload.sha256 if source is None else source.input_sha256
    fingerprint = _fingerprint(stored, headers_mac, input_sha256)
    if idempotency_key is not None:
        with services.db.begin() as session:
            existing = store.get_job_by_idempotency_key(
                session=session, tenant_id=tenant_id, idempotency_key=idempotency_key
            )
        if existing is not None:
            return _replay(existing, fingerprint)

    job_id = new_id("job")
    if source is None:
        assert upload.path is not None
        if upload.size == 0:
            raise UnsupportedMedia("the file is empty")
        info = probe(upload.path, **settings.probe_limits())
        if spec.mode == "redact":
            check_output(spec, info)  # SpecError when the output format or the sound asked does not fit
        kind: str | None = info.kind
        media = media_summary(info)
        input_key = blobs.input_key(job_id, upload.suffix)
        input_size = upload.size
        services.storage.put_file(input_key, upload.path)
    else:
        kind, media = source.kind, dict(source.media)
        input_key, input_size = source.input_key, source.input_size

    now = services.clock.now()
    try:
        with services.db.begin() as session:
            row = store.create_job(
                session=session,
                job_id=job_id,
                tenant_id=tenant_id,
                api_key_id=key_id,
                spec=stored,
                webhook_headers=sealed,
                batch_id=None if batch is None else batch.batch_id,
                batch_index=None if batch is None else batch.index,
                batch_webhook_url=batch_webhook_url,
                mode=spec.mode,
                kind=kind,
                media=media,
                input_key=input_key,
                input_size=input_size,
                input_sha256=input_sha256,
                source_job_id=None if source is None else source.id,
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint,
                now=now,
                retention=services.ctx.retention,
            )
            append_audit(
                session=session,
                actor=key_id,
                action="job.create",
                outcome="ok",
                now=now,
                tenant_id=tenant_id,
                job_id=job_id,
                request_id=request_id,
                input_sha256=input_sha256,
            )
    except IntegrityError:  # a concurrent request with the same Idempotency-Key won the insert
        services.storage.delete_prefix(blobs.job_prefix(job_id))
        if idempotency_key is None:
            raise
        with services.db.begin() as session:
            existing = store.get_job_by_idempotency_key(
                session=session, tenant_id=tenant_id, idempotency_key=idempotency_key
            )
        if existing is None:
            raise
        return _replay(existing, fingerprint)
    return Submitted(job=row, created=True)
