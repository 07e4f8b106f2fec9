"""SQL implementation of :class:`steno.common.jobs.JobRepository` (SQLAlchemy Core, async)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Unpack

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from steno.common.clock import Clock, utc_now
from steno.common.db.driver_reads import first_row
from steno.common.db.quotas import lock_tenant, tenant_usage
from steno.common.db.schema import jobs, webhook_deliveries
from steno.common.db.transaction import execute, fetch_all, fetch_first, transaction
from steno.common.jobs import (
    TERMINAL_STATES,
    UPDATABLE_FIELDS,
    AudioExpiry,
    DeliveryNotRecorded,
    DuplicateRequest,
    Job,
    JobError,
    JobState,
    LeaseCondition,
    Segment,
    WebhookDelivery,
)
from steno.common.lexicons import Replacement
from steno.common.paging import PageCursor
from steno.common.quotas import UNLIMITED, QuotaLimits, check_quota

# The columns behind UPDATABLE_FIELDS; the error is stored as two.
_UPDATABLE_COLUMNS = tuple(
    column
    for name in UPDATABLE_FIELDS
    for column in (("error_code", "error_message") if name == "error" else (name,))
)
# The Job fields stored as they are, each in the column of its name; the others are
# converted by job_row and _from_row.
_CONVERTED = frozenset(
    {"state", "audio_retention", "segments", "replacements", "warnings", "error", "labels"}
    | {"request_id", "lease_owner"}
)
_PLAIN = tuple(f.name for f in dataclasses.fields(Job) if f.name not in _CONVERTED)
_DELIVERY_FIELDS = tuple(f.name for f in dataclasses.fields(WebhookDelivery))


def job_row(job: Job, now: datetime) -> dict[str, Any]:
    """The job as a row of the jobs table, written at ``now``."""
    return {
        **{name: getattr(job, name) for name in _PLAIN},
        "state": job.state.value,
        "audio_retention_seconds": int(job.audio_retention.total_seconds()),
        "segments": [[s.start, s.end, s.text] for s in job.segments],
        "replacements": [[r.original, r.replacement, r.offset] for r in job.replacements],
        "warnings": list(job.warnings),
        "error_code": job.error.code if job.error else None,
        "error_message": job.error.message if job.error else None,
        "labels": dict(job.labels),
        # Empty means none, stored as NULL: NULLs never collide in the unique index.
        "request_id": job.request_id or None,
        "lease_owner": job.lease_owner or None,
        "update_time": now,
    }


def _from_row(m: Mapping[Any, Any]) -> Job:
    error = (
        JobError(code=m["error_code"], message=m["error_message"] or "")
        if m["error_code"]
        else None
    )
    return Job(
        **{name: m[name] for name in _PLAIN},
        state=JobState(m["state"]),
        audio_retention=timedelta(seconds=m["audio_retention_seconds"]),
        segments=[Segment(start, end, text) for start, end, text in m["segments"]],
        replacements=[Replacement(*replacement) for replacement in m["replacements"]],
        warnings=list(m["warnings"]),
        error=error,
        labels=dict(m["labels"]),
        request_id=m["request_id"] or "",
        lease_owner=m["lease_owner"] or "",
    )


class SqlJobRepository:
    """Jobs in a SQL database; each method is its own short transaction."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = utc_now) -> None:
        self._engine = engine
        self._clock = clock

    async def add(self, job: Job, *, within: QuotaLimits = UNLIMITED) -> None:
        try:
            async with transaction(self._engine) as conn:
                if not within.unlimited:
                    await lock_tenant(conn, job.tenant)
                    usage = await tenant_usage(
                        conn, job.tenant, self._clock(), excluding=job.job_id
                    )
                    check_quota(job.tenant, within, usage, new_bytes=job.size_bytes)
                await conn.execute(insert(jobs).values(job_row(job, job.create_time)))
        except IntegrityError as exc:
            # Job ids are fresh UUIDs: the one constraint a new row can break is the
            # tenant's unique request_id.
            raise DuplicateRequest(job.request_id) from exc

    async def find_by_request(self, tenant: str, request_id: str) -> Job | None:
        return await self._first(
            select(jobs).where(jobs.c.tenant == tenant, jobs.c.request_id == request_id)
        )

    async def get(self, job_id: uuid.UUID, tenant: str | None = None) -> Job | None:
        if tenant is None:
            row = await first_row(self._engine, _BY_ID, {"job_id": job_id})
        else:
            values = {"job_id": job_id, "tenant": tenant}
            row = await first_row(self._engine, _BY_ID_OF_TENANT, values)
        return _from_row(row) if row else None

    async def list_jobs(
        self, tenant: str | None, *, states: list[JobState], limit: int, after: PageCursor | None
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
        return await self._all(
            query.order_by(jobs.c.create_time.desc(), jobs.c.job_id.desc()).limit(limit)
        )

    async def delete(self, job_id: uuid.UUID) -> None:
        await execute(self._engine, delete(jobs).where(jobs.c.job_id == job_id))

    async def update(
        self, job: Job, *, expected: JobState, **lease: Unpack[LeaseCondition]
    ) -> bool:
        row = job_row(job, now=self._clock())
        values = {name: row[name] for name in (*_UPDATABLE_COLUMNS, "update_time")}
        condition = and_(jobs.c.job_id == job.job_id, jobs.c.state == expected.value)
        if (owner := lease.get("owner")) is not None:
            condition = and_(condition, jobs.c.lease_owner == owner)
        if (expired_by := lease.get("expired_by")) is not None:
            condition = and_(condition, _lease_expired(expired_by))
        return await execute(self._engine, update(jobs).where(condition).values(values)) == 1

    async def mark_published(self, job_id: uuid.UUID, now: datetime) -> None:
        statement = (
            update(jobs)
            .where(jobs.c.job_id == job_id, jobs.c.publish_time.is_(None))
            .values(publish_time=now)
        )
        await execute(self._engine, statement)

    async def unpublished(self, created_before: datetime, *, limit: int) -> list[Job]:
        query = select(jobs).where(
            jobs.c.state == JobState.QUEUED.value,
            jobs.c.publish_time.is_(None),
            jobs.c.create_time < created_before,
        )
        return await self._all(query.order_by(jobs.c.create_time).limit(limit))

    async def lease_expired(self, now: datetime, *, limit: int) -> list[Job]:
        query = select(jobs).where(jobs.c.state == JobState.PROCESSING.value, _lease_expired(now))
        return await self._all(query.order_by(jobs.c.lease_expire_time).limit(limit))

    async def audio_expired(
        self, expiry: AudioExpiry, *, after: uuid.UUID | None, limit: int
    ) -> list[Job]:
        return await self._all(self.audio_expired_query(expiry, after=after, limit=limit))

    @staticmethod
    def audio_expired_query(
        expiry: AudioExpiry, *, after: uuid.UUID | None, limit: int
    ) -> Select[Any]:
        """The sweep's query (also for its plan to be looked at)."""
        due = jobs.c.audio_expire_time <= expiry.now
        if (created_before := expiry.created_before) is not None:
            due = or_(due, jobs.c.create_time < created_before)
        query = select(jobs).where(
            jobs.c.state.in_([s.value for s in TERMINAL_STATES]),
            due,
            jobs.c.audio_delete_time.is_(None),
        )
        if expiry.tenant is not None:
            query = query.where(jobs.c.tenant == expiry.tenant)
        if after is not None:
            query = query.where(jobs.c.job_id > after)
        return query.order_by(jobs.c.job_id).limit(limit)

    async def mark_audio_deleted(
        self, job_ids: Sequence[uuid.UUID], now: datetime
    ) -> list[uuid.UUID]:
        if not job_ids:
            return []
        statement = (
            update(jobs)
            .where(jobs.c.job_id.in_(list(job_ids)), jobs.c.audio_delete_time.is_(None))
            .values(audio_delete_time=now, update_time=now)
            .returning(jobs.c.job_id)
        )
        return [row.job_id for row in await fetch_all(self._engine, statement)]

    async def add_webhook_delivery(self, job_id: uuid.UUID, delivery: WebhookDelivery) -> None:
        row = {"job_id": job_id, **dataclasses.asdict(delivery)}
        try:
            await execute(self._engine, insert(webhook_deliveries).values(row))
        except IntegrityError as exc:
            raise DeliveryNotRecorded(
                f"attempt {delivery.attempt} of job {job_id} is recorded, or the job is gone"
            ) from exc

    async def webhook_deliveries(self, job_id: uuid.UUID) -> list[WebhookDelivery]:
        query = (
            select(*(webhook_deliveries.c[name] for name in _DELIVERY_FIELDS))
            .where(webhook_deliveries.c.job_id == job_id)
            .order_by(webhook_deliveries.c.attempt)
        )
        rows = await fetch_all(self._engine, query)
        return [WebhookDelivery(**row._mapping) for row in rows]

    async def webhooks_unattempted(
        self, ended_after: datetime, ended_before: datetime, *, after: uuid.UUID | None, limit: int
    ) -> list[Job]:
        return await self._all(
            self.webhooks_unattempted_query(ended_after, ended_before, after=after, limit=limit)
        )

    @staticmethod
    def webhooks_unattempted_query(
        ended_after: datetime, ended_before: datetime, *, after: uuid.UUID | None, limit: int
    ) -> Select[Any]:
        """The janitor's query (also for its plan to be looked at): the range on the end
        time is read from the partial index of jobs that name a webhook."""
        attempted = select(webhook_deliveries.c.job_id).where(
            webhook_deliveries.c.job_id == jobs.c.job_id
        )
        query = select(jobs).where(
            jobs.c.webhook_url != "",
            jobs.c.complete_time > ended_after,
            jobs.c.complete_time < ended_before,
            jobs.c.state.in_([s.value for s in TERMINAL_STATES]),
            ~attempted.exists(),
        )
        if after is not None:
            query = query.where(jobs.c.job_id > after)
        return query.order_by(jobs.c.job_id).limit(limit)

    async def _first(self, query: Select[Any], values: dict[str, Any] | None = None) -> Job | None:
        row = await fetch_first(self._engine, query, values)
        return _from_row(row._mapping) if row else None

    async def _all(self, query: Select[Any]) -> list[Job]:
        return [_from_row(row._mapping) for row in await fetch_all(self._engine, query)]


# The status read every GetJob makes, built once: building and keying a statement costs
# more than running it. It runs on the driver itself (steno.common.db.driver_reads).
_BY_ID = select(jobs).where(jobs.c.job_id == bindparam("job_id"))
_BY_ID_OF_TENANT = _BY_ID.where(jobs.c.tenant == bindparam("tenant"))


def _lease_expired(by: datetime) -> ColumnElement[bool]:
    """The job's lease had run out by ``by`` (or it never had one)."""
    return or_(jobs.c.lease_expire_time.is_(None), jobs.c.lease_expire_time <= by)
