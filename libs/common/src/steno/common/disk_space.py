"""Free space on the local disks Steno writes audio to: the directory store's, and a
transcriber's scratch directory.

Every write of audio is checked against its size first. What it would leave free is held
against two thresholds: under the warning one the disk is reported (a log line when it
goes low, a gauge all along); under the critical one the write is refused with
StorageFull, before a byte of it is written, so that a full disk stops new audio instead
of failing halfway through it.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import Gauge

log = logging.getLogger(__name__)

DISK_FREE_BYTES = Gauge(
    "steno_disk_free_bytes", "Free bytes of a local disk Steno writes audio to", ["disk"]
)
DISK_SPACE_LOW = Gauge(
    "steno_disk_space_low", "1 while a disk's free space is under its warning threshold", ["disk"]
)


class StorageFull(Exception):
    """Writing here would leave less free space than the disk named ``disk`` must keep."""

    def __init__(self, disk: str, message: str) -> None:
        super().__init__(message)
        self.disk = disk


@dataclass
class Disk:
    """A local directory Steno writes to, and the free space it must keep there."""

    name: str
    path: Path
    warning_free_bytes: int = 0
    critical_free_bytes: int = 0
    _low: bool = field(default=False, init=False, repr=False, compare=False)

    def usage(self) -> tuple[int, int]:
        """The file system's free and total bytes (the nearest existing parent's)."""
        path = self.path.resolve()
        while not path.exists():
            path = path.parent
        usage = shutil.disk_usage(path)
        return usage.free, usage.total

    def check_room(self, needed: int) -> None:
        """Before writing ``needed`` bytes here: StorageFull if that would leave less than
        the critical free space; a warning, once, when it leaves less than the warning's."""
        free, _ = self.usage()
        left = free - needed
        DISK_FREE_BYTES.labels(self.name).set(free)
        low = left < self.warning_free_bytes
        DISK_SPACE_LOW.labels(self.name).set(int(low))
        context = {"disk": self.name, "path": str(self.path), "free_bytes": free}
        if left < self.critical_free_bytes:
            log.error("disk full: audio refused", extra={**context, "needed_bytes": needed})
            raise StorageFull(
                self.name,
                f"storage full: the {self.name} disk has {free} bytes free, and {needed} more "
                f"would leave less than the {self.critical_free_bytes} it keeps free; "
                "try again once old audio is deleted",
            )
        if low and not self._low:
            log.warning(
                "disk space low",
                extra={**context, "warning_free_bytes": self.warning_free_bytes},
            )
        self._low = low
