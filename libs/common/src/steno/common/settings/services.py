"""The settings every service starts from: its process, and the services behind its ports.
Each service's own settings add the concerns only it reads."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import Field

from steno.common.disk_space import Disk
from steno.common.settings.disks import DiskSettings
from steno.common.settings.infrastructure import BrokerSettings, DatabaseSettings, StoreSettings
from steno.common.settings.process import ProcessSettings


class ServiceSettings(ProcessSettings):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    disks: DiskSettings = Field(default_factory=DiskSettings)

    @property
    def database_url(self) -> str:
        """The configured database, or the embedded SQLite file."""
        return self.database.url_or_default(self.data_dir)

    @property
    def objects_dir(self) -> Path:
        """Where the embedded object store keeps audio."""
        return StoreSettings.objects_dir(self.data_dir)

    @property
    def objects_disk(self) -> Disk:
        """The embedded object store's disk, with the free space to keep there."""
        return self.disks.disk("objects", self.objects_dir)

    @property
    def scratch_disk(self) -> Disk:
        """The temporary directory (a transcriber's downloads), with its free space."""
        return self.disks.disk("scratch", Path(tempfile.gettempdir()))
