"""Tenants' quotas: how much audio a tenant may keep stored, how many jobs it may have
waiting or running at once, and how many hours of audio it may have transcribed a day.

The server's defaults come from settings; a tenant's overrides are stored. A limit of 0 is
no limit. An upload is checked before its first byte, as its bytes arrive, and once more
when its job is recorded, where the check and the insert are one step per tenant
(:meth:`steno.common.jobs.JobRepository.add`), so that uploads racing for the last bytes
of a quota cannot all get in.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

# Audio hours count the jobs created this long ago or since.
AUDIO_HOURS_WINDOW = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """One limit per quota; None is "not set" (an override falls back to the default), 0
    is no limit."""

    # Bytes of audio stored at once: jobs' audio not yet deleted and unfinished uploads.
    stored_audio_bytes: int | None = None
    # Jobs QUEUED or PROCESSING at once.
    concurrent_jobs: int | None = None
    # Hours of audio of the jobs created in the last 24 hours (known once transcribed).
    audio_hours_per_day: float | None = None

    def over(self, defaults: QuotaLimits) -> QuotaLimits:
        """These limits where set, ``defaults`` elsewhere."""
        own = {name: value for name in QUOTA_NAMES if (value := getattr(self, name)) is not None}
        return dataclasses.replace(defaults, **own)

    @property
    def unlimited(self) -> bool:
        return not any(getattr(self, field.name) for field in dataclasses.fields(self))


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """What a tenant uses of each quota now."""

    stored_audio_bytes: int = 0
    concurrent_jobs: int = 0
    audio_hours_per_day: float = 0.0


# No limits at all (also: no override set).
UNLIMITED = QuotaLimits()

QUOTA_NAMES = tuple(field.name for field in dataclasses.fields(QuotaUsage))


class QuotaExceeded(Exception):
    """An upload would take a tenant past one of its quotas."""

    def __init__(self, tenant: str, quota: str, limit: float, message: str) -> None:
        super().__init__(message)
        self.tenant = tenant
        self.quota = quota
        self.limit = limit


def check_quota(
    tenant: str,
    limits: QuotaLimits,
    usage: QuotaUsage,
    *,
    new_bytes: int = 0,
    new_jobs: int = 1,
) -> None:
    """QuotaExceeded if ``usage`` with ``new_bytes`` more stored and ``new_jobs`` more
    jobs goes past a limit, or if the audio hours are used up already (a new job's own
    hours are not known until it is transcribed)."""
    if (limit := limits.concurrent_jobs) and usage.concurrent_jobs + new_jobs > limit:
        raise QuotaExceeded(
            tenant,
            "concurrent_jobs",
            limit,
            f"tenant {tenant} has {usage.concurrent_jobs} jobs queued or processing, its limit "
            f"is {limit}; upload again once some have finished",
        )
    _check_stored(tenant, limits, usage, new_bytes)
    if (hours := limits.audio_hours_per_day) and usage.audio_hours_per_day >= hours:
        raise QuotaExceeded(
            tenant,
            "audio_hours_per_day",
            hours,
            f"tenant {tenant} has had {usage.audio_hours_per_day:.2f} hours of audio "
            f"transcribed in the last 24 hours, its limit is {hours:g}; try again later",
        )


def _check_stored(tenant: str, limits: QuotaLimits, usage: QuotaUsage, new_bytes: int) -> None:
    if (limit := limits.stored_audio_bytes) and usage.stored_audio_bytes + new_bytes > limit:
        raise QuotaExceeded(
            tenant,
            "stored_audio_bytes",
            limit,
            f"tenant {tenant} stores {usage.stored_audio_bytes} bytes of audio; "
            f"{'this upload would pass' if new_bytes else 'that is'} its limit of {limit} "
            "bytes; delete jobs' audio (DeleteJob) or wait for their retention to run out",
        )


@dataclass(frozen=True, slots=True)
class Admission:
    """An upload let in under its tenant's quotas, with what they were when it started, so
    that its bytes can be held against them as they arrive. The last word is the job
    insert's own check."""

    tenant: str
    limits: QuotaLimits = UNLIMITED
    usage: QuotaUsage = QuotaUsage()

    def check_size(self, size: int) -> None:
        """QuotaExceeded if an upload of ``size`` bytes would pass the stored audio quota."""
        _check_stored(self.tenant, self.limits, self.usage, size)


class QuotaRepository(Protocol):
    """Tenants' stored overrides, and what they use."""

    async def overrides(self, tenant: str) -> QuotaLimits:
        """The tenant's own limits (every one None if it has none)."""
        ...

    async def set_overrides(self, tenant: str, overrides: QuotaLimits, now: datetime) -> None:
        """Replaces the tenant's own limits; all None removes them."""
        ...

    async def usage(
        self, tenant: str, now: datetime, *, excluding: uuid.UUID | None = None
    ) -> QuotaUsage:
        """What the tenant uses now; ``excluding`` names a job id whose unfinished upload
        is not counted (the upload being checked, which counts its bytes itself)."""
        ...


@dataclass(frozen=True, slots=True)
class TenantQuotas:
    """The limits in force for each tenant: its overrides over the server's defaults."""

    repository: QuotaRepository
    defaults: QuotaLimits

    async def limits(self, tenant: str) -> QuotaLimits:
        return (await self.repository.overrides(tenant)).over(self.defaults)

    async def admit(
        self, tenant: str, now: datetime, *, job_id: uuid.UUID | None = None
    ) -> Admission:
        """Lets a new job of ``tenant`` in, or raises QuotaExceeded; ``job_id`` names the
        unfinished upload it continues, whose stored bytes the upload counts itself."""
        limits = await self.limits(tenant)
        if limits.unlimited:
            return Admission(tenant)
        usage = await self.repository.usage(tenant, now, excluding=job_id)
        check_quota(tenant, limits, usage)
        return Admission(tenant, limits, usage)
