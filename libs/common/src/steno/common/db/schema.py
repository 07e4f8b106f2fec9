"""Table definitions. Alembic migrations are written by hand against these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
    text,
)

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_STORED_AUDIO = "audio_delete_time IS NULL AND audio_expire_time IS NOT NULL"
_WITH_WEBHOOK = "webhook_url <> ''"

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", Uuid, primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("object_key", String(255), nullable=False),
    Column("filename", Text, nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("audio_retention_seconds", BigInteger, nullable=False),
    Column("language", String(35), nullable=False),
    Column("language_probability", Float, nullable=True),
    Column("lexicon_id", String(64), nullable=False),
    Column("lexicon_version", Integer, nullable=False),
    Column("engine", String(32), nullable=False),
    Column("model", Text, nullable=False),
    Column("duration_seconds", Float, nullable=True),
    Column("original_text", Text, nullable=False),
    Column("processed_text", Text, nullable=False),
    Column("segments", JSON, nullable=False),
    # [[original, replacement, offset], ...]
    Column("replacements", JSON, nullable=False),
    Column("warnings", JSON, nullable=False),
    Column("error_code", String(32), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("progress", Float, nullable=False),
    Column("labels", JSON, nullable=False),
    # NULL when the client gave none: NULLs never collide in the unique index.
    Column("request_id", String(128), nullable=True),
    Column("create_time", UTCDateTime, nullable=False),
    Column("start_time", UTCDateTime, nullable=True),
    Column("complete_time", UTCDateTime, nullable=True),
    Column("audio_expire_time", UTCDateTime, nullable=True),
    Column("audio_delete_time", UTCDateTime, nullable=True),
    Column("update_time", UTCDateTime, nullable=False),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expire_time", UTCDateTime, nullable=True),
    Column("publish_time", UTCDateTime, nullable=True),
    Column("webhook_url", Text, nullable=False, server_default=""),
    Index("ix_jobs_tenant_create_time", "tenant", "create_time", "job_id"),
    Index("ix_jobs_audio_expire_time", "audio_expire_time"),
    # The retention sweep's: the jobs whose audio is still stored, in id order.
    Index(
        "ix_jobs_stored_audio",
        "job_id",
        postgresql_where=text(_STORED_AUDIO),
        sqlite_where=text(_STORED_AUDIO),
    ),
    # The janitor's look for webhook events never queued: jobs naming a webhook, by end time.
    Index(
        "ix_jobs_webhook_complete_time",
        "complete_time",
        postgresql_where=text(_WITH_WEBHOOK),
        sqlite_where=text(_WITH_WEBHOOK),
    ),
    Index("ux_jobs_tenant_request_id", "tenant", "request_id", unique=True),
    # What the reconciler looks for: unpublished QUEUED jobs and expired PROCESSING leases.
    Index("ix_jobs_state_create_time", "state", "create_time"),
)

lexicons = Table(
    "lexicons",
    metadata,
    Column("lexicon_id", Uuid, primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("name", Text, nullable=False),
    Column("language", String(35), nullable=False),
    Column("version", Integer, nullable=False),
    # [{"phrase": ..., "sounds_like": [...]}, ...]: read and written whole, never queried.
    Column("entries", JSON, nullable=False),
    Column("create_time", UTCDateTime, nullable=False),
    Column("update_time", UTCDateTime, nullable=False),
    Index("ix_lexicons_tenant_create_time", "tenant", "create_time", "lexicon_id"),
)

# Uploads whose bytes have not all arrived (steno.common.partial_uploads): one row per tenant and
# request_id, written by whichever stream has the upload now.
partial_uploads = Table(
    "partial_uploads",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("job_id", Uuid, nullable=False),
    Column("object_key", String(255), nullable=False),
    Column("store_upload_id", Text, nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("filename", Text, nullable=False),
    Column("language", String(35), nullable=False),
    Column("lexicon_id", String(64), nullable=False),
    Column("engine", String(32), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("audio_retention_seconds", BigInteger, nullable=False),
    Column("webhook_url", Text, nullable=False, server_default=""),
    # [[number, size, etag], ...] in part order: read and written whole, never queried.
    Column("parts", JSON, nullable=False),
    Column("stream", String(64), nullable=False),
    Column("next_part", Integer, nullable=False),
    Column("create_time", UTCDateTime, nullable=False),
    Column("update_time", UTCDateTime, nullable=False),
    # What the janitor looks for: uploads no stream has written for a while.
    Index("ix_partial_uploads_update_time", "update_time"),
)

# API keys (steno.common.api_keys): only each key's hash is kept.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("name", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("create_time", UTCDateTime, nullable=False),
    Column("last_use_time", UTCDateTime, nullable=True),
    Column("revoke_time", UTCDateTime, nullable=True),
    Index("ix_api_keys_tenant_create_time", "tenant", "create_time", "id"),
    Index("ix_api_keys_create_time", "create_time", "id"),
)

# A tenant's own quota limits; NULL means the server's default, 0 unlimited.
tenant_quotas = Table(
    "tenant_quotas",
    metadata,
    Column("tenant", String(128), primary_key=True),
    Column("stored_audio_bytes", BigInteger, nullable=True),
    Column("concurrent_jobs", BigInteger, nullable=True),
    Column("audio_hours_per_day", Float, nullable=True),
    Column("update_time", UTCDateTime, nullable=False),
)

# Each attempt to deliver a job's webhook event (steno.common.webhooks): appended, never
# changed, and gone with the job.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("job_id", Uuid, ForeignKey("jobs.job_id", ondelete="CASCADE"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("attempt_time", UTCDateTime, nullable=False),
    # The receiver's HTTP status; 0 when no HTTP answer came.
    Column("status_code", Integer, nullable=False),
    Column("error", Text, nullable=False),
)
