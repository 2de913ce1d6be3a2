"""webhook schedule: durable retries (next attempt time, attempts, delivery id) and sealed custom headers

Revision ID: 7c3e9a1f2b44
Revises: 5b2d0c41a9e3
Create Date: 2026-11-30 09:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c3e9a1f2b44"
down_revision: str | None = "5b2d0c41a9e3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("webhook_next_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("webhook_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("webhook_delivery_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("webhook_headers", sa.Text(), nullable=True))
        batch.create_index("ix_jobs_webhook_due", ["webhook_status", "webhook_next_at"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_webhook_due")
        batch.drop_column("webhook_headers")
        batch.drop_column("webhook_delivery_id")
        batch.drop_column("webhook_attempts")
        batch.drop_column("webhook_next_at")
