"""What every step of an upload talks to, passed down as one value."""

from __future__ import annotations

from dataclasses import dataclass, field

from steno.common.broker import JobQueue
from steno.common.clock import Clock, utc_now
from steno.common.faults import Faults
from steno.common.jobs import JobRepository
from steno.common.partial_uploads import PartialUploadRepository
from steno.common.storage import ObjectStore


@dataclass(frozen=True, slots=True)
class UploadPorts:
    jobs: JobRepository
    partials: PartialUploadRepository
    store: ObjectStore
    queue: JobQueue
    faults: Faults = field(default_factory=Faults)
    clock: Clock = utc_now
