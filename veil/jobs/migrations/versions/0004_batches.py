"""batches: jobs submitted together (one spec, one status, one webhook when all are done, one ZIP)

Revision ID: 9d41c7e2a810
Revises: 7c3e9a1f2b44
Create Date: 2026-11-30 09:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9d41c7e2a810"
down_revision: str | None = "7c3e9a1f2b44"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("batch_index", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("batch_webhook_url", sa.String(length=2048), nullable=True))
        batch.create_index("ix_jobs_batch", ["batch_id", "batch_index"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_batch")
        batch.drop_column("batch_webhook_url")
        batch.drop_column("batch_index")
        batch.drop_column("batch_id")
