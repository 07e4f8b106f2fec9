"""Lexicons, and what post-processing and language detection record on a job.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lexicons",
        sa.Column("lexicon_id", sa.Uuid(), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("language", sa.String(35), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_lexicons_tenant_create_time", "lexicons", ["tenant", "create_time", "lexicon_id"]
    )
    # Existing jobs replaced nothing and warned of nothing.
    op.add_column("jobs", sa.Column("language_probability", sa.Float(), nullable=True))
    op.add_column("jobs", sa.Column("replacements", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column("jobs", sa.Column("warnings", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("replacements", server_default=None)
        batch.alter_column("warnings", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("warnings")
        batch.drop_column("replacements")
        batch.drop_column("language_probability")
    op.drop_index("ix_lexicons_tenant_create_time", "lexicons")
    op.drop_table("lexicons")
