"""API keys: ``veil_`` plus 32 random bytes (base32), stored only as a SHA-256, and their rows.

The key has 256 bits of entropy, so a fast hash is as good as a slow one here, and lookups stay one
indexed query per request. Functions are keyword-only and run inside ``Database.begin()``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from veil.auth.schemas import SCOPES
from veil.auth.tables import ApiKeyRow
from veil.ids import new_id

__all__ = [
    "KEY_PREFIX",
    "create_api_key",
    "find_api_key",
    "generate_api_key",
    "get_api_key",
    "hash_api_key",
    "list_api_keys",
    "revoke_api_key",
    "touch_api_key",
]

KEY_PREFIX = "veil_"


def generate_api_key() -> str:
    token = base64.b32encode(secrets.token_bytes(32)).decode("ascii").rstrip("=").lower()
    return KEY_PREFIX + token


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(
    *,
    session: Session,
    name: str,
    tenant_id: str,
    scopes: Sequence[str],
    now: datetime,
    rate_limit_per_minute: int | None = None,
) -> tuple[ApiKeyRow, str]:
    """A new key: returns the row and the plaintext key (shown once, stored only as a hash)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}")
    key = generate_api_key()
    row = ApiKeyRow(
        id=new_id("key"),
        name=name,
        tenant_id=tenant_id,
        scopes=" ".join(s for s in SCOPES if s in scopes),
        key_hash=hash_api_key(key),
        prefix=key[:12],
        rate_limit_per_minute=rate_limit_per_minute,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row, key


def find_api_key(*, session: Session, key: str) -> ApiKeyRow | None:
    """The active (not revoked) key whose hash matches ``key``."""
    query = select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_api_key(key), ApiKeyRow.revoked_at.is_(None))
    return session.scalars(query).one_or_none()


def get_api_key(*, session: Session, key_id: str) -> ApiKeyRow | None:
    return session.get(ApiKeyRow, key_id)


def touch_api_key(*, session: Session, key_id: str, now: datetime) -> None:
    """Update ``last_used_at`` at most once a minute, so reads do not turn into writes."""
    statement = (
        update(ApiKeyRow)
        .where(
            ApiKeyRow.id == key_id,
            or_(ApiKeyRow.last_used_at.is_(None), ApiKeyRow.last_used_at < now - timedelta(minutes=1)),
        )
        .values(last_used_at=now)
    )
    session.execute(statement.execution_options(synchronize_session=False))


def list_api_keys(
    *, session: Session, tenant_id: str | None = None, include_revoked: bool = True
) -> list[ApiKeyRow]:
    query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
    if tenant_id is not None:
        query = query.where(ApiKeyRow.tenant_id == tenant_id)
    if not include_revoked:
        query = query.where(ApiKeyRow.revoked_at.is_(None))
    return list(session.scalars(query))


def revoke_api_key(*, session: Session, key_id: str, now: datetime) -> bool:
    """Revoke a key; it answers 401 from the next request. ``False`` if unknown or already revoked."""
    statement = (
        update(ApiKeyRow)
        .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(ApiKeyRow.id)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).scalar_one_or_none() is not None
