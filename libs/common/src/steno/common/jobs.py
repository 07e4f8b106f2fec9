"""The job: Steno's one domain record, and the repository port that stores it."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypedDict, Unpack

from steno.common.lexicons import Replacement
from steno.common.paging import PageCursor
from steno.common.quotas import UNLIMITED, QuotaLimits

DEFAULT_TENANT = "default"


class JobState(enum.StrEnum):
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})
# The states of a job that waits or runs: what a tenant's concurrent_jobs quota counts.
ACTIVE_STATES = frozenset({JobState.QUEUED, JobState.PROCESSING})

# The Job fields JobRepository.update writes: all that a transition may change. Identity
# and the facts of the upload are fixed when the job is added.
UPDATABLE_FIELDS = (
    "state",
    "language",
    "language_probability",
    "lexicon_version",
    "engine",
    "model",
    "duration_seconds",
    "original_text",
    "processed_text",
    "segments",
    "replacements",
    "warnings",
    "error",
    "attempts",
    "progress",
    "start_time",
    "complete_time",
    "audio_expire_time",
    "audio_delete_time",
    "lease_owner",
    "lease_expire_time",
    "publish_time",
)


@dataclass(frozen=True, slots=True)
class Segment:
    """A timed stretch of transcript; times are seconds from the start of the audio."""

    start: float
    end: float
    text: str


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job failed: a canonical gRPC code name and a sentence for a person."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One attempt to deliver a job's webhook event: ``status_code`` is the receiver's HTTP
    status, 0 when no HTTP answer came; ``error`` is empty when the receiver took it."""

    event_id: str
    attempt: int
    attempt_time: datetime
    status_code: int
    error: str = ""

    @property
    def delivered(self) -> bool:
        return not self.error


@dataclass(slots=True)
class Job:
    job_id: uuid.UUID
    tenant: str
    state: JobState
    object_key: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    audio_retention: timedelta
    create_time: datetime
    language: str = ""
    language_probability: float | None = None
    lexicon_id: str = ""
    lexicon_version: int = 0
    engine: str = ""
    model: str = ""
    duration_seconds: float | None = None
    original_text: str = ""
    processed_text: str = ""
    segments: list[Segment] = field(default_factory=list)
    replacements: list[Replacement] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: JobError | None = None
    attempts: int = 0
    progress: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)
    # The client's idempotency key; empty when it gave none. Unique per tenant.
    request_id: str = ""
    start_time: datetime | None = None
    complete_time: datetime | None = None
    audio_expire_time: datetime | None = None
    audio_delete_time: datetime | None = None
    # The worker transcribing a PROCESSING job, and until when its claim holds unless it
    # renews it; a job whose lease ran out was abandoned (its worker died).
    lease_owner: str = ""
    lease_expire_time: datetime | None = None
    # When the broker confirmed it has the job's request; None while it may not.
    publish_time: datetime | None = None
    # Where the job's end is announced (steno.common.webhooks); empty for nowhere.
    webhook_url: str = ""

    def start(self, now: datetime, *, owner: str = "", lease_until: datetime | None = None) -> None:
        """A worker takes the job: QUEUED → PROCESSING, leased to ``owner``."""
        self._require(JobState.QUEUED)
        self.state = JobState.PROCESSING
        self._run(now, owner, lease_until)

    def take_over(self, now: datetime, *, owner: str, lease_until: datetime) -> None:
        """A worker takes a PROCESSING job whose lease ran out: its worker is gone."""
        self._require(JobState.PROCESSING)
        self._run(now, owner, lease_until)

    def lease_expired(self, now: datetime) -> bool:
        return self.lease_expire_time is None or self.lease_expire_time <= now

    def release(self) -> None:
        """A worker hands the job back unfinished (it is shutting down): PROCESSING → QUEUED."""
        self._require(JobState.PROCESSING)
        self.state = JobState.QUEUED
        self.progress = 0.0
        self._drop_lease()

    def _run(self, now: datetime, owner: str, lease_until: datetime | None) -> None:
        self.attempts += 1
        self.progress = 0.0
        self.start_time = now
        self.lease_owner = owner
        self.lease_expire_time = lease_until

    def _drop_lease(self) -> None:
        self.lease_owner = ""
        self.lease_expire_time = None

    def complete(
        self, transcript: Transcript, now: datetime, post: PostProcessing | None = None
    ) -> None:
        """PROCESSING → COMPLETED with the engine's transcript and what the lexicon made
        of it."""
        self._require(JobState.PROCESSING)
        post = post or PostProcessing()
        self.original_text = transcript.text
        self.processed_text = post.text
        self.segments = list(transcript.segments if post.segments is None else post.segments)
        self.replacements = list(post.replacements)
        self.warnings = list(post.warnings)
        self.lexicon_version = post.lexicon_version
        self.language = transcript.language
        self.language_probability = transcript.language_probability
        self.duration_seconds = transcript.duration_seconds
        self.model = transcript.model
        self.progress = 1.0
        self._end(JobState.COMPLETED, now)

    def cancel(self, now: datetime) -> None:
        """QUEUED or PROCESSING → CANCELLED, at the client's request. The audio is kept
        until its retention runs out, counted from now."""
        if self.state.is_terminal:
            raise InvalidTransition(self.job_id, self.state, JobState.CANCELLED)
        self._end(JobState.CANCELLED, now)

    def fail(self, error: JobError, now: datetime) -> None:
        """Any live state → FAILED, saying why."""
        if self.state.is_terminal:
            raise InvalidTransition(self.job_id, self.state, JobState.FAILED)
        self.error = error
        self._end(JobState.FAILED, now)

    def _end(self, state: JobState, now: datetime) -> None:
        # Retention counts from the end of the job: the audio is kept while it may be needed.
        self.state = state
        self.complete_time = now
        self.audio_expire_time = now + self.audio_retention
        self._drop_lease()

    def _require(self, state: JobState) -> None:
        if self.state is not state:
            raise InvalidTransition(self.job_id, self.state, state)


class DuplicateRequest(Exception):
    """The tenant already has a job with this request_id."""


class DeliveryNotRecorded(Exception):
    """An attempt at a job's webhook was not recorded: another consumer recorded that
    attempt first, or the job is gone."""


class InvalidTransition(Exception):
    """A state change that the job's current state does not allow."""

    def __init__(self, job_id: uuid.UUID, current: JobState, wanted: JobState) -> None:
        super().__init__(f"job {job_id} is {current}, not {wanted}")


@dataclass(frozen=True, slots=True)
class Transcript:
    """What an engine made of a job's audio."""

    text: str
    segments: list[Segment]
    language: str
    duration_seconds: float
    model: str
    # How sure the engine is of ``language`` when it detected it (0..1); None if requested
    # or not reported.
    language_probability: float | None = None


@dataclass(frozen=True, slots=True)
class PostProcessing:
    """What lexicon post-processing made of a transcript. The default is "no lexicon": no
    processed text, the engine's segments, nothing replaced."""

    lexicon_version: int = 0
    text: str = ""
    # None keeps the engine's segments.
    segments: Sequence[Segment] | None = None
    replacements: Sequence[Replacement] = ()
    warnings: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class AudioExpiry:
    """Which ended jobs' audio is due for deletion: the jobs whose retention ran out by
    ``now``; with ``older_than``, also every ended job created longer ago than that (a
    retention applied to existing jobs); with ``tenant``, only that tenant's."""

    now: datetime
    older_than: timedelta | None = None
    tenant: str | None = None

    @property
    def created_before(self) -> datetime | None:
        return None if self.older_than is None else self.now - self.older_than

    def covers(self, job: Job) -> bool:
        """Whether ``job``'s audio is due (what the SQL repository's query says too)."""
        if not job.state.is_terminal or job.audio_delete_time is not None:
            return False
        if self.tenant is not None and job.tenant != self.tenant:
            return False
        if job.audio_expire_time is not None and job.audio_expire_time <= self.now:
            return True
        return self.created_before is not None and job.create_time < self.created_before


class LeaseCondition(TypedDict, total=False):
    """What :meth:`JobRepository.update` may also require of the stored job's lease."""

    # The worker that must still hold the lease.
    owner: str | None
    # A time by which the lease must have run out.
    expired_by: datetime | None


class JobRepository(Protocol):
    """Durable storage of jobs. Every state change is one atomic, conditional write."""

    async def add(self, job: Job, *, within: QuotaLimits = UNLIMITED) -> None:
        """Stores a new job; DuplicateRequest if its tenant already used its request_id.
        QuotaExceeded if the tenant's usage with this job would pass the limits ``within``:
        checked and inserted as one step per tenant, so racing uploads cannot all get in."""
        ...

    async def find_by_request(self, tenant: str, request_id: str) -> Job | None:
        """The tenant's job created with ``request_id``, if any."""
        ...

    async def get(self, job_id: uuid.UUID, tenant: str | None = None) -> Job | None:
        """The job, if it exists and (when ``tenant`` is given) belongs to that tenant."""
        ...

    async def list_jobs(
        self, tenant: str | None, *, states: list[JobState], limit: int, after: PageCursor | None
    ) -> list[Job]:
        """The tenant's jobs (every tenant's for None), newest first, optionally only in
        ``states``."""
        ...

    async def delete(self, job_id: uuid.UUID) -> None: ...

    async def update(
        self, job: Job, *, expected: JobState, **lease: Unpack[LeaseCondition]
    ) -> bool:
        """Writes the job's mutable fields if its stored state is still ``expected`` (and,
        when ``owner`` is given, its stored lease is still that worker's; when
        ``expired_by`` is given, the stored lease had run out by then, so that taking
        over a job loses to a worker that renewed its lease meanwhile).

        The condition makes each transition happen once, however many workers race for it,
        and keeps one worker's result only; False means another writer got there first and
        nothing was written.
        """
        ...

    async def mark_published(self, job_id: uuid.UUID, now: datetime) -> None:
        """Notes that the broker confirmed the job's request (once; later calls keep the
        first time)."""
        ...

    async def unpublished(self, created_before: datetime, *, limit: int) -> list[Job]:
        """QUEUED jobs whose request the broker never confirmed, created before the given
        time, oldest first."""
        ...

    async def lease_expired(self, now: datetime, *, limit: int) -> list[Job]:
        """PROCESSING jobs whose lease ran out, oldest lease first."""
        ...

    async def audio_expired(
        self, expiry: AudioExpiry, *, after: uuid.UUID | None, limit: int
    ) -> list[Job]:
        """The jobs ``expiry`` covers, ordered by id, starting after ``after``."""
        ...

    async def mark_audio_deleted(
        self, job_ids: Sequence[uuid.UUID], now: datetime
    ) -> list[uuid.UUID]:
        """Stamps the audio of these jobs deleted; returns the ones this call stamped (a job
        another sweep stamped first is left alone and not returned)."""
        ...

    async def add_webhook_delivery(self, job_id: uuid.UUID, delivery: WebhookDelivery) -> None:
        """Records an attempt at the job's webhook; DeliveryNotRecorded if that attempt number
        is recorded already (another consumer made it) or the job is gone."""
        ...

    async def webhook_deliveries(self, job_id: uuid.UUID) -> list[WebhookDelivery]:
        """The attempts at the job's webhook, oldest first; none for a job that is gone."""
        ...

    async def webhooks_unattempted(
        self, ended_after: datetime, ended_before: datetime, *, after: uuid.UUID | None, limit: int
    ) -> list[Job]:
        """Ended jobs that name a webhook and have no attempt at it recorded, which ended
        after ``ended_after`` and before ``ended_before``; ordered by id, starting after
        ``after``."""
        ...


class PassThroughJobRepository:
    """Hands every call on to the wrapped repository but those a subclass defines: the base
    of the repositories that add something to some writes (events, webhooks) while the
    reads and the other writes go straight through."""

    def __init__(self, jobs: JobRepository) -> None:
        self._jobs = jobs

    def __getattr__(self, name: str) -> Any:
        # Only for what the class does not define.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._jobs, name)
