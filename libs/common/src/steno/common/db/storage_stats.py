"""SQL implementation of :class:`steno.common.storage_stats.StorageStatsReader`: three
grouped queries, whatever the number of jobs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from steno.common.db.schema import jobs, partial_uploads
from steno.common.db.transaction import transaction
from steno.common.jobs import JobState
from steno.common.storage_stats import TenantStorage


class SqlStorageStats:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def by_tenant(self, now: datetime) -> list[TenantStorage]:
        tenants: dict[str, TenantStorage] = {}

        def of(name: str) -> TenantStorage:
            return tenants.setdefault(name, TenantStorage(name))

        kept = jobs.c.audio_delete_time.is_(None)
        audio = (
            select(
                jobs.c.tenant,
                func.count(),
                func.coalesce(func.sum(jobs.c.size_bytes), 0),
                func.min(jobs.c.create_time),
                func.min(jobs.c.audio_expire_time),
            )
            .where(kept)
            .group_by(jobs.c.tenant)
        )
        states = select(jobs.c.tenant, jobs.c.state, func.count()).group_by(
            jobs.c.tenant, jobs.c.state
        )
        uploads = select(partial_uploads.c.tenant, partial_uploads.c.parts)
        async with transaction(self._engine) as conn:
            for tenant, count, size, oldest, next_expiry in await conn.execute(audio):
                stats = of(tenant)
                stats.audio_objects, stats.audio_bytes = count, int(size)
                stats.oldest_audio_time, stats.next_expire_time = oldest, next_expiry
            for tenant, state, count in await conn.execute(states):
                of(tenant).jobs[JobState(state)] = count
            for tenant, parts in await conn.execute(uploads):
                stats = of(tenant)
                stats.partial_uploads += 1
                stats.partial_upload_bytes += sum(size for _, size, _ in parts)
        return [tenants[name] for name in sorted(tenants)]
