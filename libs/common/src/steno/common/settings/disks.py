"""The free space Steno keeps on the local disks it writes audio to (the directory store's,
a transcriber's scratch directory)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from steno.common.disk_space import Disk
from steno.common.settings.base import CONFIG, StenoSettings

MIB = 1024 * 1024


class DiskSettings(StenoSettings):
    model_config = CONFIG | SettingsConfigDict(env_prefix="STENO_DISK_")

    # Under this much free space a disk is reported: a warning, and steno_disk_space_low.
    warning_free_bytes: int = Field(default=1024 * MIB, ge=0)
    # Audio that would leave less than this is refused (uploads) or put off (transcribers).
    critical_free_bytes: int = Field(default=100 * MIB, ge=0)

    @model_validator(mode="after")
    def _warning_first(self) -> DiskSettings:
        if self.warning_free_bytes < self.critical_free_bytes:
            raise ValueError(
                "STENO_DISK_WARNING_FREE_BYTES must be at least STENO_DISK_CRITICAL_FREE_BYTES"
            )
        return self

    def disk(self, name: str, path: Path) -> Disk:
        return Disk(
            name,
            path,
            warning_free_bytes=self.warning_free_bytes,
            critical_free_bytes=self.critical_free_bytes,
        )
