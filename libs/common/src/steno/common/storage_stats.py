"""What Steno keeps, per tenant: the operator's view behind AdminService.GetStorageStats."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from steno.common.jobs import JobState


@dataclass
class TenantStorage:
    """One tenant's stored audio (jobs whose audio is not deleted yet), its uploads still
    in progress, and its jobs by state."""

    tenant: str
    audio_objects: int = 0
    audio_bytes: int = 0
    partial_uploads: int = 0
    partial_upload_bytes: int = 0
    jobs: Counter[JobState] = field(default_factory=Counter)
    oldest_audio_time: datetime | None = None
    next_expire_time: datetime | None = None

    def add(self, other: TenantStorage) -> None:
        """Adds ``other``'s figures to these (for the total over tenants)."""
        self.audio_objects += other.audio_objects
        self.audio_bytes += other.audio_bytes
        self.partial_uploads += other.partial_uploads
        self.partial_upload_bytes += other.partial_upload_bytes
        self.jobs.update(other.jobs)
        self.oldest_audio_time = _earliest(self.oldest_audio_time, other.oldest_audio_time)
        self.next_expire_time = _earliest(self.next_expire_time, other.next_expire_time)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((t for t in (a, b) if t is not None), default=None)


def total(tenants: list[TenantStorage]) -> TenantStorage:
    summed = TenantStorage(tenant="")
    for tenant in tenants:
        summed.add(tenant)
    return summed


class StorageStatsReader(Protocol):
    async def by_tenant(self, now: datetime) -> list[TenantStorage]:
        """Every tenant with a job or an upload in progress, by name."""
        ...
