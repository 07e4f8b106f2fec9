"""SQL implementation of :class:`steno.common.quotas.QuotaRepository`, and the per-tenant
lock and usage query under which a job is recorded within its quotas."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from steno.common.db.schema import jobs, partial_uploads, tenant_quotas
from steno.common.db.transaction import fetch_first, transaction
from steno.common.jobs import ACTIVE_STATES
from steno.common.quotas import AUDIO_HOURS_WINDOW, QUOTA_NAMES, QuotaLimits, QuotaUsage


class SqlQuotaRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def overrides(self, tenant: str) -> QuotaLimits:
        row = await fetch_first(
            self._engine, select(tenant_quotas).where(tenant_quotas.c.tenant == tenant)
        )
        if row is None:
            return QuotaLimits()
        return QuotaLimits(**{name: row._mapping[name] for name in QUOTA_NAMES})

    async def set_overrides(self, tenant: str, overrides: QuotaLimits, now: datetime) -> None:
        values = {name: getattr(overrides, name) for name in QUOTA_NAMES}
        async with transaction(self._engine) as conn:
            await conn.execute(delete(tenant_quotas).where(tenant_quotas.c.tenant == tenant))
            if any(value is not None for value in values.values()):
                await conn.execute(
                    insert(tenant_quotas).values(tenant=tenant, update_time=now, **values)
                )

    async def usage(
        self, tenant: str, now: datetime, *, excluding: uuid.UUID | None = None
    ) -> QuotaUsage:
        async with transaction(self._engine) as conn:
            return await tenant_usage(conn, tenant, now, excluding=excluding)


async def lock_tenant(conn: AsyncConnection, tenant: str) -> None:
    """Holds the tenant's quota lock until ``conn``'s transaction ends: whoever checks and
    then writes under it cannot interleave with another doing the same. Postgres takes a
    transaction-level advisory lock; SQLite takes its database write lock, with a write
    that changes nothing."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(_lock_key(tenant))))
    else:
        await conn.execute(
            update(tenant_quotas)
            .where(tenant_quotas.c.tenant == tenant)
            .values(tenant=tenant_quotas.c.tenant)
        )


async def tenant_usage(
    conn: AsyncConnection, tenant: str, now: datetime, *, excluding: uuid.UUID | None = None
) -> QuotaUsage:
    """What ``tenant`` uses of each quota, read in ``conn``'s transaction."""
    kept_bytes = case((jobs.c.audio_delete_time.is_(None), jobs.c.size_bytes), else_=0)
    active = case((jobs.c.state.in_([s.value for s in ACTIVE_STATES]), 1), else_=0)
    recent_seconds = case(
        (jobs.c.create_time >= now - AUDIO_HOURS_WINDOW, jobs.c.duration_seconds), else_=None
    )
    totals = select(
        func.coalesce(func.sum(kept_bytes), 0),
        func.coalesce(func.sum(active), 0),
        func.coalesce(func.sum(recent_seconds), 0.0),
    ).where(jobs.c.tenant == tenant)
    stored, running, seconds = (await conn.execute(totals)).one()
    uploads = select(partial_uploads.c.parts).where(partial_uploads.c.tenant == tenant)
    if excluding is not None:
        uploads = uploads.where(partial_uploads.c.job_id != excluding)
    for (parts,) in await conn.execute(uploads):
        stored += sum(size for _, size, _ in parts)
    return QuotaUsage(
        stored_audio_bytes=int(stored),
        concurrent_jobs=int(running),
        audio_hours_per_day=float(seconds) / 3600,
    )


def _lock_key(tenant: str) -> int:
    """The tenant's advisory lock id: 64 bits of a hash, as Postgres's signed bigint."""
    digest = hashlib.sha256(f"steno-quota:{tenant}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
