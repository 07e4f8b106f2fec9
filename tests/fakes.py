"""In-memory fakes of Steno's ports, for unit tests of the code that talks through them.

Each fake keeps the port's contract (what is stored, what a conditional write does, what
raises) and adds only what a test needs to look inside or to make a call fail.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from steno.common.broker import DEFAULT_DELIVERY_LIMIT, FailurePause, TranscriptionRequest
from steno.common.broker.memory import InProcessJobQueue
from steno.common.jobs import (
    DEFAULT_TENANT,
    UPDATABLE_FIELDS,
    AudioExpiry,
    DeliveryNotRecorded,
    DuplicateRequest,
    Job,
    JobState,
    Segment,
    Transcript,
    WebhookDelivery,
)
from steno.common.lexicons import Lexicon, LexiconEntry
from steno.common.paging import PageCursor
from steno.common.partial_uploads import PartialUpload, UploadRequest
from steno.common.quotas import UNLIMITED, QuotaLimits
from steno.common.storage import (
    MAX_PARTS,
    MIN_PART_BYTES,
    DeleteFailure,
    StorageUnavailable,
    StoredPart,
)
from steno.transcriber.engines.port import TranscriptionOptions

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_job(**overrides: Any) -> Job:
    """A QUEUED job with plausible upload facts; keyword arguments replace any field."""
    job_id = overrides.pop("job_id", None) or uuid.uuid4()
    fields: dict[str, Any] = {
        "job_id": job_id,
        "tenant": DEFAULT_TENANT,
        "state": JobState.QUEUED,
        "object_key": f"audio/{job_id}",
        "filename": "meeting.wav",
        "content_type": "audio/wav",
        "size_bytes": 1000,
        "sha256": "0" * 64,
        "audio_retention": timedelta(hours=24),
        "create_time": T0,
        "engine": "local",
    }
    fields.update(overrides)
    return Job(**fields)


def make_upload_request(**overrides: Any) -> UploadRequest:
    """A validated upload request of the default tenant; keyword arguments replace any field."""
    fields: dict[str, Any] = {
        "tenant": DEFAULT_TENANT,
        "filename": "meeting.wav",
        "language": "en",
        "lexicon_id": "",
        "engine": "local",
        "audio_retention": timedelta(hours=24),
    }
    fields.update(overrides)
    return UploadRequest(**fields)


def make_partial_upload(request_id: str = "req-1", **overrides: Any) -> PartialUpload:
    """A started upload with no parts yet; keyword arguments replace any field, and
    ``tenant`` (with ``request_id``) goes into its request."""
    tenant = overrides.pop("tenant", DEFAULT_TENANT)
    job_id = overrides.pop("job_id", None) or uuid.uuid4()
    fields: dict[str, Any] = {
        "request": make_upload_request(tenant=tenant, request_id=request_id),
        "job_id": job_id,
        "object_key": f"audio/{job_id}",
        "store_upload_id": f"upload-{uuid.uuid4().hex}",
        "content_type": "audio/wav",
        "stream": "stream-a",
        "create_time": T0,
        "update_time": T0,
    }
    fields.update(overrides)
    return PartialUpload(**fields)


def make_transcript(**overrides: Any) -> Transcript:
    fields: dict[str, Any] = {
        "text": "good morning everyone",
        "segments": [Segment(0.0, 1.5, "good morning"), Segment(1.5, 2.25, "everyone")],
        "language": "en",
        "duration_seconds": 2.25,
        "model": "tiny.en",
    }
    fields.update(overrides)
    return Transcript(**fields)


def make_lexicon(*entries: LexiconEntry, **overrides: Any) -> Lexicon:
    """A version-1 lexicon of the default tenant; keyword arguments replace any field."""
    fields: dict[str, Any] = {
        "lexicon_id": uuid.uuid4(),
        "tenant": DEFAULT_TENANT,
        "name": "platform team",
        "create_time": T0,
        "update_time": T0,
        "language": "en",
        "entries": list(entries),
    }
    fields.update(overrides)
    return Lexicon(**fields)


class FakeLexiconRepository:
    """LexiconRepository in a dict, copying in and out as a database would."""

    def __init__(self, lexicons: Sequence[Lexicon] = ()) -> None:
        self._lexicons = {lexicon.lexicon_id: copy.deepcopy(lexicon) for lexicon in lexicons}
        self.error: BaseException | None = None

    def stored(self, lexicon_id: uuid.UUID) -> Lexicon:
        return copy.deepcopy(self._lexicons[lexicon_id])

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    async def add(self, lexicon: Lexicon) -> None:
        self._check()
        self._lexicons[lexicon.lexicon_id] = copy.deepcopy(lexicon)

    async def get(self, lexicon_id: uuid.UUID, tenant: str) -> Lexicon | None:
        self._check()
        found = self._lexicons.get(lexicon_id)
        return copy.deepcopy(found) if found and found.tenant == tenant else None

    async def list_lexicons(
        self, tenant: str, *, limit: int, after: PageCursor | None
    ) -> list[Lexicon]:
        self._check()
        mine = sorted(
            (
                lexicon
                for lexicon in self._lexicons.values()
                if lexicon.tenant == tenant
                and (
                    after is None
                    or (lexicon.create_time, lexicon.lexicon_id) < (after.create_time, after.id)
                )
            ),
            key=lambda lexicon: (lexicon.create_time, lexicon.lexicon_id),
            reverse=True,
        )
        return [copy.deepcopy(lexicon) for lexicon in mine[:limit]]

    async def update(self, lexicon: Lexicon, *, expected_version: int) -> bool:
        self._check()
        stored = self._lexicons.get(lexicon.lexicon_id)
        if stored is None or stored.tenant != lexicon.tenant or stored.version != expected_version:
            return False
        self._lexicons[lexicon.lexicon_id] = copy.deepcopy(lexicon)
        return True

    async def delete(self, lexicon_id: uuid.UUID, tenant: str) -> bool:
        self._check()
        stored = self._lexicons.get(lexicon_id)
        if stored is None or stored.tenant != tenant:
            return False
        del self._lexicons[lexicon_id]
        return True


class FakeJobRepository:
    """JobRepository in a dict. Jobs are copied in and out, as a database would, so a
    caller's changes are stored only by add() or update()."""

    def __init__(self, jobs: Sequence[Job] = ()) -> None:
        self._jobs: dict[uuid.UUID, Job] = {job.job_id: copy.deepcopy(job) for job in jobs}
        # Exceptions to raise instead of doing the operation, keyed as described.
        self.add_error: BaseException | None = None
        self.delete_error: BaseException | None = None
        self.update_errors: dict[JobState, BaseException] = {}  # by ``expected``
        self.updates: list[tuple[uuid.UUID, JobState, bool]] = []  # (job, expected, written)
        self.deleted: list[uuid.UUID] = []
        self._deliveries: dict[uuid.UUID, list[WebhookDelivery]] = {}

    # -- what a test inspects -------------------------------------------------------------

    def stored(self, job_id: uuid.UUID) -> Job:
        """The stored job itself (not a copy); KeyError if there is none."""
        return self._jobs[job_id]

    def all(self) -> list[Job]:
        return list(self._jobs.values())

    # -- JobRepository --------------------------------------------------------------------

    async def add(self, job: Job, *, within: QuotaLimits = UNLIMITED) -> None:
        # Quotas are the SQL repository's (tests/integration/test_quotas.py); not faked.
        if self.add_error is not None:
            raise self.add_error
        if job.request_id and await self.find_by_request(job.tenant, job.request_id):
            raise DuplicateRequest(job.request_id)
        if job.job_id in self._jobs:
            raise ValueError(f"job {job.job_id} already exists")
        self._jobs[job.job_id] = copy.deepcopy(job)

    async def get(self, job_id: uuid.UUID, tenant: str | None = None) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None or (tenant is not None and job.tenant != tenant):
            return None
        return copy.deepcopy(job)

    async def list_jobs(
        self, tenant: str | None, *, states: list[JobState], limit: int, after: PageCursor | None
    ) -> list[Job]:
        matching = [
            job
            for job in self._jobs.values()
            if tenant in (None, job.tenant)
            and (not states or job.state in states)
            and (after is None or (job.create_time, job.job_id) < (after.create_time, after.id))
        ]
        matching.sort(key=lambda job: (job.create_time, job.job_id), reverse=True)
        return [copy.deepcopy(job) for job in matching[:limit]]

    async def find_by_request(self, tenant: str, request_id: str) -> Job | None:
        for job in self._jobs.values():
            if (job.tenant, job.request_id) == (tenant, request_id):
                return copy.deepcopy(job)
        return None

    async def delete(self, job_id: uuid.UUID) -> None:
        if self.delete_error is not None:
            raise self.delete_error
        self.deleted.append(job_id)
        self._jobs.pop(job_id, None)
        self._deliveries.pop(job_id, None)

    async def update(
        self,
        job: Job,
        *,
        expected: JobState,
        owner: str | None = None,
        expired_by: datetime | None = None,
    ) -> bool:
        if expected in self.update_errors:
            raise self.update_errors[expected]
        stored = self._jobs.get(job.job_id)
        written = (
            stored is not None
            and stored.state is expected
            and (owner is None or stored.lease_owner == owner)
            and (expired_by is None or stored.lease_expired(expired_by))
        )
        self.updates.append((job.job_id, expected, written))
        if stored is None or not written:
            return False
        for name in UPDATABLE_FIELDS:
            setattr(stored, name, copy.deepcopy(getattr(job, name)))
        return True

    async def mark_published(self, job_id: uuid.UUID, now: datetime) -> None:
        stored = self._jobs.get(job_id)
        if stored is not None and stored.publish_time is None:
            stored.publish_time = now

    async def unpublished(self, created_before: datetime, *, limit: int) -> list[Job]:
        found = sorted(
            (
                job
                for job in self._jobs.values()
                if job.state is JobState.QUEUED
                and job.publish_time is None
                and job.create_time < created_before
            ),
            key=lambda job: job.create_time,
        )
        return [copy.deepcopy(job) for job in found[:limit]]

    async def lease_expired(self, now: datetime, *, limit: int) -> list[Job]:
        found = sorted(
            (
                job
                for job in self._jobs.values()
                if job.state is JobState.PROCESSING and job.lease_expired(now)
            ),
            key=lambda job: job.lease_expire_time or datetime.min.replace(tzinfo=UTC),
        )
        return [copy.deepcopy(job) for job in found[:limit]]

    async def audio_expired(
        self, expiry: AudioExpiry, *, after: uuid.UUID | None, limit: int
    ) -> list[Job]:
        matching = sorted(
            (
                job
                for job in self._jobs.values()
                if expiry.covers(job) and (after is None or job.job_id > after)
            ),
            key=lambda job: job.job_id,
        )
        return [copy.deepcopy(job) for job in matching[:limit]]

    async def mark_audio_deleted(
        self, job_ids: Sequence[uuid.UUID], now: datetime
    ) -> list[uuid.UUID]:
        stamped = []
        for job_id in job_ids:
            job = self._jobs.get(job_id)
            if job is not None and job.audio_delete_time is None:
                job.audio_delete_time = now
                stamped.append(job_id)
        return stamped

    async def add_webhook_delivery(self, job_id: uuid.UUID, delivery: WebhookDelivery) -> None:
        if job_id not in self._jobs:
            raise DeliveryNotRecorded(f"job {job_id} is gone")
        recorded = self._deliveries.setdefault(job_id, [])
        if any(d.attempt == delivery.attempt for d in recorded):
            raise DeliveryNotRecorded(f"attempt {delivery.attempt} of job {job_id}")
        recorded.append(delivery)

    async def webhook_deliveries(self, job_id: uuid.UUID) -> list[WebhookDelivery]:
        if job_id not in self._jobs:
            return []
        return sorted(self._deliveries.get(job_id, []), key=lambda d: d.attempt)

    async def webhooks_unattempted(
        self, ended_after: datetime, ended_before: datetime, *, after: uuid.UUID | None, limit: int
    ) -> list[Job]:
        matching = sorted(
            (
                job
                for job in self._jobs.values()
                if job.webhook_url
                and job.state.is_terminal
                and job.complete_time is not None
                and ended_after < job.complete_time < ended_before
                and not self._deliveries.get(job.job_id)
                and (after is None or job.job_id > after)
            ),
            key=lambda job: job.job_id,
        )
        return [copy.deepcopy(job) for job in matching[:limit]]


@dataclass
class FakeUpload:
    """One multipart upload in a FakeObjectStore. A test may set ``start_time`` back to make
    the upload stale."""

    key: str
    content_type: str
    parts: dict[int, bytes] = field(default_factory=dict)  # by part number
    start_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    completed: bool = False
    aborted: bool = False

    @property
    def is_open(self) -> bool:
        return not (self.completed or self.aborted)


class FakeObjectStore:
    """ObjectStore in dicts: the completed objects, and every multipart upload by its id.

    Completing checks the parts as S3 does (ascending, stored with that etag, all but the
    last at least MIN_PART_BYTES), raising ValueError where S3 refuses.
    """

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})
        self.content_types: dict[str, str] = {}
        # Every upload started, by upload id; completed and aborted ones stay, marked so.
        self.uploads: dict[str, FakeUpload] = {}
        # The uploads aborted (by abort_upload or abort_stale_uploads), in order, once each.
        self.aborted_uploads: list[str] = []
        self.delete_calls: list[list[str]] = []
        # Keys whose deletion fails, with the reason delete_many reports for them.
        self.delete_failures: dict[str, str] = {}
        # Raised by put_part instead of storing the part.
        self.put_error: BaseException | None = None
        # Raised by complete_upload (after complete_started and complete_gate).
        self.complete_error: BaseException | None = None
        # When set, complete_upload waits for it, after setting complete_started.
        self.complete_gate: asyncio.Event | None = None
        self.complete_started = asyncio.Event()
        self.download_error: BaseException | None = None

    def open_uploads(self) -> list[str]:
        """The ids of the uploads neither completed nor aborted."""
        return [upload_id for upload_id, upload in self.uploads.items() if upload.is_open]

    @property
    def uploads_started(self) -> int:
        return len(self.uploads)

    def _open_upload(self, key: str, upload_id: str) -> FakeUpload | None:
        upload = self.uploads.get(upload_id)
        return upload if upload is not None and upload.key == key and upload.is_open else None

    async def ensure_ready(self) -> None:
        return None

    async def start_upload(self, key: str, content_type: str) -> str:
        upload_id = uuid.uuid4().hex
        self.uploads[upload_id] = FakeUpload(key, content_type)
        return upload_id

    async def put_part(self, key: str, upload_id: str, number: int, data: bytes) -> StoredPart:
        if not 1 <= number <= MAX_PARTS:
            raise ValueError(f"part number {number} is not between 1 and {MAX_PARTS}")
        if self.put_error is not None:
            raise self.put_error
        upload = self._open_upload(key, upload_id)
        if upload is None:
            raise StorageUnavailable(f"upload {upload_id} of {key!r} no longer exists")
        upload.parts[number] = bytes(data)
        return StoredPart(number, len(data), _md5(data))

    async def complete_upload(self, key: str, upload_id: str, parts: Sequence[StoredPart]) -> None:
        self.complete_started.set()
        if self.complete_gate is not None:
            await self.complete_gate.wait()
        if self.complete_error is not None:
            raise self.complete_error
        upload = self._open_upload(key, upload_id)
        if upload is None:
            # Completed already, by this call or another stream's: not an error.
            stored = self.objects.get(key)
            if stored is not None and len(stored) == sum(part.size for part in parts):
                return
            raise StorageUnavailable(f"upload {upload_id} of {key!r} no longer exists")
        numbers = [part.number for part in parts]
        if not parts or numbers != sorted(set(numbers)):
            raise ValueError(f"parts must be listed in ascending order, once each: {numbers}")
        for index, part in enumerate(parts):
            data = upload.parts.get(part.number)
            if data is None or _md5(data) != part.etag:
                raise ValueError(f"InvalidPart: part {part.number} is not stored as listed")
            if index < len(parts) - 1 and len(data) < MIN_PART_BYTES:
                raise ValueError(f"EntityTooSmall: part {part.number} holds {len(data)} bytes")
        self.objects[key] = b"".join(upload.parts[part.number] for part in parts)
        self.content_types[key] = upload.content_type
        upload.completed = True
        upload.parts.clear()

    async def abort_upload(self, key: str, upload_id: str) -> None:
        upload = self._open_upload(key, upload_id)
        if upload is not None:
            upload.aborted = True
            upload.parts.clear()
            self.aborted_uploads.append(upload_id)

    async def sha256(self, key: str) -> str:
        if key not in self.objects:
            raise FileNotFoundError(f"no object {key!r}")
        return hashlib.sha256(self.objects[key]).hexdigest()

    async def download(self, key: str, destination: Path) -> None:
        if self.download_error is not None:
            raise self.download_error
        if key not in self.objects:
            raise FileNotFoundError(f"no object {key!r}")
        await asyncio.to_thread(destination.write_bytes, self.objects[key])

    async def abort_stale_uploads(
        self, started_before: datetime, *, keep: Collection[str] = ()
    ) -> int:
        stale = [
            (upload_id, upload)
            for upload_id, upload in self.uploads.items()
            if upload.is_open and upload.start_time < started_before and upload_id not in keep
        ]
        for upload_id, upload in stale:
            await self.abort_upload(upload.key, upload_id)
        return len(stale)

    async def delete_many(self, keys: Sequence[str]) -> list[DeleteFailure]:
        self.delete_calls.append(list(keys))
        failures = []
        for key in keys:
            if key in self.delete_failures:
                failures.append(DeleteFailure(key, self.delete_failures[key]))
            else:
                self.objects.pop(key, None)
                self.content_types.pop(key, None)
        return failures


def _md5(data: bytes) -> str:
    """A part's etag, as S3 makes it."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@dataclass
class FakeEngine:
    """An Engine that returns ``transcript`` or raises ``error``, recording each call."""

    transcript: Transcript = field(default_factory=make_transcript)
    error: BaseException | None = None
    engine_name: str = "local"
    calls: int = 0
    audio_paths: list[Path] = field(default_factory=list)
    audio_bytes: list[bytes] = field(default_factory=list)
    options: list[TranscriptionOptions] = field(default_factory=list)
    # Fractions reported through on_progress before returning.
    progress: Sequence[float] = ()

    @property
    def name(self) -> str:
        return self.engine_name

    @property
    def languages(self) -> list[str | None]:
        return [o.language for o in self.options]

    async def transcribe(self, audio: Path, options: TranscriptionOptions) -> Transcript:
        self.calls += 1
        self.audio_paths.append(audio)
        self.audio_bytes.append(await asyncio.to_thread(audio.read_bytes))
        self.options.append(options)
        for fraction in self.progress:
            options.on_progress(fraction)
        if self.error is not None:
            raise self.error
        return self.transcript


def _quick_pause() -> FailurePause:
    return FailurePause(0.001, 0.001)


class RecordingQueue(InProcessJobQueue):
    """The in-process job queue itself (its delivery rules, with pauses short enough for a
    test), recording every request published; ``error``, while set, makes publish fail."""

    def __init__(
        self, error: BaseException | None = None, *, delivery_limit: int = DEFAULT_DELIVERY_LIMIT
    ) -> None:
        super().__init__(
            delivery_limit=delivery_limit, new_pause=lambda: FailurePause(0.001, 0.001)
        )
        self.error = error
        self.published: list[TranscriptionRequest] = []

    async def publish(self, request: TranscriptionRequest) -> None:
        if self.error is not None:
            raise self.error
        self.published.append(request)
        await super().publish(request)


class FakePartialUploadRepository:
    """PartialUploadRepository in a dict keyed by (tenant, request_id), copying in and out as
    a database would, with the same writes conditional on the stream that has the upload."""

    def __init__(self, uploads: Sequence[PartialUpload] = ()) -> None:
        self._uploads = {
            (upload.tenant, upload.request_id): copy.deepcopy(upload) for upload in uploads
        }
        self.error: BaseException | None = None

    def stored(self, tenant: str, request_id: str) -> PartialUpload:
        return copy.deepcopy(self._uploads[(tenant, request_id)])

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    async def get(self, tenant: str, request_id: str) -> PartialUpload | None:
        self._check()
        found = self._uploads.get((tenant, request_id))
        return copy.deepcopy(found) if found else None

    async def save(self, upload: PartialUpload) -> None:
        self._check()
        self._uploads[(upload.tenant, upload.request_id)] = copy.deepcopy(upload)

    async def take_over(self, upload: PartialUpload, *, stream: str, now: datetime) -> bool:
        self._check()
        stored = self._uploads.get((upload.tenant, upload.request_id))
        if stored is None or (stored.stream, stored.next_part) != (upload.stream, upload.next_part):
            return False
        stored.stream = stream
        stored.next_part = upload.next_part + 1
        stored.update_time = now
        return True

    async def record_parts(
        self,
        tenant: str,
        request_id: str,
        *,
        stream: str,
        parts: list[StoredPart],
        now: datetime,
    ) -> bool:
        self._check()
        stored = self._uploads.get((tenant, request_id))
        if stored is None or stored.stream != stream:
            return False
        stored.parts = copy.deepcopy(list(parts))
        if parts:
            stored.next_part = parts[-1].number + 1
        stored.update_time = now
        return True

    async def delete(self, tenant: str, request_id: str, *, stream: str | None = None) -> bool:
        self._check()
        stored = self._uploads.get((tenant, request_id))
        if stored is None or (stream is not None and stored.stream != stream):
            return False
        del self._uploads[(tenant, request_id)]
        return True

    async def list_stale(self, updated_before: datetime, *, limit: int) -> list[PartialUpload]:
        self._check()
        stale = sorted(
            (upload for upload in self._uploads.values() if upload.update_time < updated_before),
            key=lambda upload: (upload.update_time, upload.tenant, upload.request_id),
        )
        return [copy.deepcopy(upload) for upload in stale[:limit]]

    async def store_upload_ids(self) -> set[str]:
        self._check()
        return {upload.store_upload_id for upload in self._uploads.values()}
