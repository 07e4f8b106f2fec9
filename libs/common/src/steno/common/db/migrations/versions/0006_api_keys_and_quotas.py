"""API keys (stored hashed) and per-tenant quota overrides.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_use_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_time", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_keys_tenant_create_time", "api_keys", ["tenant", "create_time", "id"])
    op.create_index("ix_api_keys_create_time", "api_keys", ["create_time", "id"])
    op.create_table(
        "tenant_quotas",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("stored_audio_bytes", sa.BigInteger(), nullable=True),
        sa.Column("concurrent_jobs", sa.BigInteger(), nullable=True),
        sa.Column("audio_hours_per_day", sa.Float(), nullable=True),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tenant_quotas")
    op.drop_index("ix_api_keys_create_time", "api_keys")
    op.drop_index("ix_api_keys_tenant_create_time", "api_keys")
    op.drop_table("api_keys")
