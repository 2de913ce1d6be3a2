"""``/v1/account``: the calling key, its tenant's usage, and the limits that apply to it."""

from __future__ import annotations

from fastapi import APIRouter

from veil.api.deps import Authenticated, ServicesDep
from veil.api.errors import error_responses
from veil.api.schemas import AccountPublic, Limits, UsagePublic
from veil.auth.keys import get_api_key
from veil.auth.schemas import api_key_public
from veil.errors import JobNotFound
from veil.jobs import store

__all__ = ["router"]

router = APIRouter(prefix="/v1/account", tags=["account"])


@router.get("", response_model=AccountPublic, summary="Usage and limits", responses=error_responses(401, 429))
def get_account(principal: Authenticated, services: ServicesDep) -> AccountPublic:
    """Any valid key may read its own account."""
    settings = services.settings
    with services.db.begin() as session:
        key = get_api_key(session=session, key_id=principal.key_id)
        used = store.usage(session=session, tenant_id=principal.tenant_id, now=services.clock.now())
    if key is None:
        raise JobNotFound("key not found")
    return AccountPublic(
        key=api_key_public(key),
        usage=UsagePublic(
            jobs_by_state={state.value: count for state, count in used.jobs_by_state.items()},
            jobs_last_24h=used.jobs_last_24h,
            bytes_in=used.bytes_in,
            bytes_out=used.bytes_out,
            frames=used.frames,
            processing_seconds=round(used.processing_s, 3),
        ),
        limits=Limits(
            max_upload_mb=settings.max_upload_mb,
            max_pixels=settings.max_pixels,
            max_duration_s=settings.max_duration_s,
            max_frames=settings.max_frames,
            max_decode_gigapixels=settings.max_decode_gigapixels,
            rate_limit_per_minute=key.rate_limit_per_minute or settings.rate_limit_per_minute,
            max_wait_s=settings.max_wait_s,
            retention_hours=settings.retention_hours,
            queue_max=settings.queue_max,
        ),
    )
