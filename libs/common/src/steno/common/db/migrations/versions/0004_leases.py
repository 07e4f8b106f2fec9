"""Leases on PROCESSING jobs, and when the broker confirmed a job's request.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("lease_owner", sa.String(128), nullable=True))
    op.add_column("jobs", sa.Column("lease_expire_time", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("publish_time", sa.DateTime(timezone=True), nullable=True))
    # Jobs from before this revision were published when they were uploaded.
    op.execute("UPDATE jobs SET publish_time = create_time")
    op.create_index("ix_jobs_state_create_time", "jobs", ["state", "create_time"])


def downgrade() -> None:
    op.drop_index("ix_jobs_state_create_time", "jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("publish_time")
        batch.drop_column("lease_expire_time")
        batch.drop_column("lease_owner")
