"""SQL implementation of :class:`steno.common.jobs.JobRepository` (SQLAlchemy Core, async)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, delete, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from steno.common.db.schema import jobs
from steno.common.db.transaction import transaction
from steno.common.jobs import (
    TERMINAL_STATES,
    UPDATABLE_FIELDS,
    DuplicateRequest,
    Job,
    JobError,
    JobState,
    Segment,
)
from steno.common.lexicon import Replacement
from steno.common.paging import PageCursor

# The columns behind UPDATABLE_FIELDS; the error is stored as two.
_UPDATABLE_COLUMNS = tuple(
    column
    for name in UPDATABLE_FIELDS
    for column in (("error_code", "error_message") if name == "error" else (name,))
)


def _to_row(job: Job, now: datetime) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "tenant": job.tenant,
        "state": job.state.value,
        "object_key": job.object_key,
        "filename": job.filename,
        "content_type": job.content_type,
        "size_bytes": job.size_bytes,
        "sha256": job.sha256,
        "audio_retention_seconds": int(job.audio_retention.total_seconds()),
        "language": job.language,
        "language_probability": job.language_probability,
        "lexicon_id": job.lexicon_id,
        "lexicon_version": job.lexicon_version,
        "engine": job.engine,
        "model": job.model,
        "duration_seconds": job.duration_seconds,
        "original_text": job.original_text,
        "processed_text": job.processed_text,
        "segments": [[s.start, s.end, s.text] for s in job.segments],
        "replacements": [[r.original, r.replacement, r.offset] for r in job.replacements],
        "warnings": list(job.warnings),
        "error_code": job.error.code if job.error else None,
        "error_message": job.error.message if job.error else None,
        "attempts": job.attempts,
        "progress": job.progress,
        "labels": dict(job.labels),
        "request_id": job.request_id or None,
        "create_time": job.create_time,
        "start_time": job.start_time,
        "complete_time": job.complete_time,
        "audio_expire_time": job.audio_expire_time,
        "audio_delete_time": job.audio_delete_time,
        "lease_owner": job.lease_owner or None,
        "lease_expire_time": job.lease_expire_time,
        "publish_time": job.publish_time,
        "update_time": now,
    }


def _from_row(row: Row[Any]) -> Job:
    m = row._mapping
    error = (
        JobError(code=m["error_code"], message=m["error_message"] or "")
        if m["error_code"]
        else None
    )
    return Job(
        job_id=m["job_id"],
        tenant=m["tenant"],
        state=JobState(m["state"]),
        object_key=m["object_key"],
        filename=m["filename"],
        content_type=m["content_type"],
        size_bytes=m["size_bytes"],
        sha256=m["sha256"],
        audio_retention=timedelta(seconds=m["audio_retention_seconds"]),
        create_time=m["create_time"],
        language=m["language"],
        language_probability=m["language_probability"],
        lexicon_id=m["lexicon_id"],
        lexicon_version=m["lexicon_version"],
        engine=m["engine"],
        model=m["model"],
        duration_seconds=m["duration_seconds"],
        original_text=m["original_text"],
        processed_text=m["processed_text"],
        segments=[Segment(start, end, text) for start, end, text in m["segments"]],
        replacements=[Replacement(*replacement) for replacement in m["replacements"]],
        warnings=list(m["warnings"]),
        error=error,
        attempts=m["attempts"],
        progress=m["progress"],
        labels=dict(m["labels"]),
        request_id=m["request_id"] or "",
        start_time=m["start_time"],
        complete_time=m["complete_time"],
        audio_expire_time=m["audio_expire_time"],
        audio_delete_time=m["audio_delete_time"],
        lease_owner=m["lease_owner"] or "",
        lease_expire_time=m["lease_expire_time"],
        publish_time=m["publish_time"],
    )


class SqlJobRepository:
    """Jobs in a SQL database; each method is its own short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, job: Job) -> None:
        try:
            async with transaction(self._engine) as conn:
                await conn.execute(insert(jobs).values(_to_row(job, job.create_time)))
        except IntegrityError as exc:
            # Job ids are fresh UUIDs: the one constraint a new row can break is the
            # tenant's unique request_id.
            raise DuplicateRequest(job.request_id) from exc

    async def find_by_request(self, tenant: str, request_id: str) -> Job | None:
        query = select(jobs).where(jobs.c.tenant == tenant, jobs.c.request_id == request_id)
        async with transaction(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return _from_row(row) if row else None

    async def get(self, job_id: uuid.UUID, tenant: str | None = None) -> Job | None:
        query = select(jobs).where(jobs.c.job_id == job_id)
        if tenant is not None:
            query = query.where(jobs.c.tenant == tenant)
        async with transaction(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return _from_row(row) if row else None

    async def list_jobs(
        self,
        tenant: str | None,
        *,
        states: Sequence[JobState],
        limit: int,
        after: PageCursor | None,
    ) -> list[Job]:
        query = select(jobs)
        if tenant is not None:
            query = query.where(jobs.c.tenant == tenant)
        if states:
            query = query.where(jobs.c.state.in_([s.value for s in states]))
        if after is not None:
            query = query.where(
                tuple_(jobs.c.create_time, jobs.c.job_id) < tuple_(after.create_time, after.id)
            )
        query = query.order_by(jobs.c.create_time.desc(), jobs.c.job_id.desc()).limit(limit)
        async with transaction(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [_from_row(row) for row in rows]

    async def delete(self, job_id: uuid.UUID) -> None:
        async with transaction(self._engine) as conn:
            await conn.execute(delete(jobs).where(jobs.c.job_id == job_id))

    async def update(
        self,
        job: Job,
        *,
        expected: JobState,
        owner: str | None = None,
        lease_expired_by: datetime | None = None,
    ) -> bool:
        row = _to_row(job, now=datetime.now(UTC))
        values = {name: row[name] for name in (*_UPDATABLE_COLUMNS, "update_time")}
        condition = and_(jobs.c.job_id == job.job_id, jobs.c.state == expected.value)
        if owner is not None:
            condition = and_(condition, jobs.c.lease_owner == owner)
        if lease_expired_by is not None:
            condition = and_(
                condition,
                or_(
                    jobs.c.lease_expire_time.is_(None),
                    jobs.c.lease_expire_time <= lease_expired_by,
                ),
            )
        statement = update(jobs).where(condition).values(values)
        async with transaction(self._engine) as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    async def mark_published(self, job_id: uuid.UUID, now: datetime) -> None:
        statement = (
            update(jobs)
            .where(jobs.c.job_id == job_id, jobs.c.publish_time.is_(None))
            .values(publish_time=now)
        )
        async with transaction(self._engine) as conn:
            await conn.execute(statement)

    async def unpublished(self, created_before: datetime, *, limit: int) -> list[Job]:
        query = (
            select(jobs)
            .where(
                jobs.c.state == JobState.QUEUED.value,
                jobs.c.publish_time.is_(None),
                jobs.c.create_time < created_before,
            )
            .order_by(jobs.c.create_time)
            .limit(limit)
        )
        async with transaction(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [_from_row(row) for row in rows]

    async def lease_expired(self, now: datetime, *, limit: int) -> list[Job]:
        query = (
            select(jobs)
            .where(
                jobs.c.state == JobState.PROCESSING.value,
                or_(jobs.c.lease_expire_time.is_(None), jobs.c.lease_expire_time <= now),
            )
            .order_by(jobs.c.lease_expire_time)
            .limit(limit)
        )
        async with transaction(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [_from_row(row) for row in rows]

    async def audio_expired(
        self, now: datetime, *, after: uuid.UUID | None, limit: int
    ) -> list[Job]:
        query = select(jobs).where(
            jobs.c.state.in_([s.value for s in TERMINAL_STATES]),
            jobs.c.audio_expire_time <= now,
            jobs.c.audio_delete_time.is_(None),
        )
        if after is not None:
            query = query.where(jobs.c.job_id > after)
        query = query.order_by(jobs.c.job_id).limit(limit)
        async with transaction(self._engine) as conn:
            rows = (await conn.execute(query)).all()
        return [_from_row(row) for row in rows]

    async def mark_audio_deleted(self, job_ids: Sequence[uuid.UUID], now: datetime) -> None:
        if not job_ids:
            return
        statement = (
            update(jobs)
            .where(jobs.c.job_id.in_(list(job_ids)), jobs.c.audio_delete_time.is_(None))
            .values(audio_delete_time=now, update_time=now)
        )
        async with transaction(self._engine) as conn:
            await conn.execute(statement)
