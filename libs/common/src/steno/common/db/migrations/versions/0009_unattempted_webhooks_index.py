"""An index of the ended jobs that name a webhook, by end time: the janitor looks there for
events never queued, within the retry window, so its cost grows with recent webhook jobs,
not with every job ever recorded.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_WITH_WEBHOOK = "webhook_url <> ''"


def upgrade() -> None:
    op.create_index(
        "ix_jobs_webhook_complete_time",
        "jobs",
        ["complete_time"],
        postgresql_where=sa.text(_WITH_WEBHOOK),
        sqlite_where=sa.text(_WITH_WEBHOOK),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_webhook_complete_time", "jobs")
