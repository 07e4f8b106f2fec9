"""An index of the jobs whose audio is still stored, by id: the retention sweep walks it in
id order, so its cost grows with the audio kept, not with every job ever recorded.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_STORED = "audio_delete_time IS NULL AND audio_expire_time IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_jobs_stored_audio",
        "jobs",
        ["job_id"],
        postgresql_where=sa.text(_STORED),
        sqlite_where=sa.text(_STORED),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_stored_audio", "jobs")
