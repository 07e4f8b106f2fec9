"""The quotas every tenant has unless it has its own."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from steno.common.quotas import QuotaLimits
from steno.common.settings.base import CONFIG, StenoSettings


class QuotaSettings(StenoSettings):
    """Every tenant's quotas unless it has its own (AdminService.SetTenantQuota,
    ``steno tenants set-quota``); 0 is no limit."""

    model_config = CONFIG | SettingsConfigDict(env_prefix="STENO_QUOTA_")

    stored_audio_bytes: int = Field(default=0, ge=0)
    concurrent_jobs: int = Field(default=0, ge=0)
    audio_hours_per_day: float = Field(default=0, ge=0)

    @property
    def limits(self) -> QuotaLimits:
        return QuotaLimits(
            stored_audio_bytes=self.stored_audio_bytes,
            concurrent_jobs=self.concurrent_jobs,
            audio_hours_per_day=self.audio_hours_per_day,
        )
