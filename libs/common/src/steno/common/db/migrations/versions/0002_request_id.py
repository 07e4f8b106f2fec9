"""Idempotency keys: a job remembers its client's request_id, unique per tenant.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("request_id", sa.String(128), nullable=True))
    op.create_index("ux_jobs_tenant_request_id", "jobs", ["tenant", "request_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ux_jobs_tenant_request_id")
        batch.drop_column("request_id")
