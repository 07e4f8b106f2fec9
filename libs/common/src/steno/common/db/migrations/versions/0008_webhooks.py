"""Completion webhooks: the URL an upload names, on its job and on its unfinished upload,
and every attempt to deliver the job's event.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("jobs", "partial_uploads"):
        op.add_column(table, sa.Column("webhook_url", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "webhook_deliveries",
        sa.Column(
            "job_id",
            sa.Uuid(),
            sa.ForeignKey("jobs.job_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("attempt", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("attempt_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    for table in ("partial_uploads", "jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("webhook_url")
