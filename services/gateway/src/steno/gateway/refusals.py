"""Why the gateway refuses a request, beyond a bad field (request_fields), an upload
(uploads.refusals) or a job control (control): each kind is its own exception carrying the
facts a program needs to act on it, which rpc_errors turns into the status's ErrorInfo."""

from __future__ import annotations

import uuid

from steno.common.jobs import Job, JobState


class LexiconNotFound(LookupError):
    """The caller has no lexicon ``lexicon_id`` (another tenant's is not found either)."""

    def __init__(self, lexicon_id: uuid.UUID | str, advice: str = "") -> None:
        super().__init__(f"no lexicon {lexicon_id}" + (f"; {advice}" if advice else ""))
        self.lexicon_id = lexicon_id


class LexiconChanged(Exception):
    """Lexicon ``lexicon_id`` is not at the version the update was made from; reading it
    again and reapplying the change can succeed."""

    def __init__(self, lexicon_id: uuid.UUID, message: str) -> None:
        super().__init__(message)
        self.lexicon_id = lexicon_id


class ApiKeyNotFound(LookupError):
    """No API key has the id ``key_id``."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no API key {key_id}")
        self.key_id = key_id


class TranscriptNotReady(Exception):
    """The job is not COMPLETED: its transcript is not there yet, or never will be."""

    def __init__(self, job: Job) -> None:
        super().__init__(_no_transcript_yet(job))
        self.job_id = job.job_id
        self.state = job.state.value


def _no_transcript_yet(job: Job) -> str:
    """Why a job that is not COMPLETED has no transcript: whether it ever will."""
    if job.state is JobState.CANCELLED:
        return f"job {job.job_id} was cancelled; it has no transcript"
    if job.state is JobState.FAILED:
        reason = f" ({job.error.code}: {job.error.message})" if job.error else ""
        return f"job {job.job_id} failed{reason}; it has no transcript"
    return f"job {job.job_id} is {job.state.value}; its transcript is ready once it is COMPLETED"


class Unauthenticated(Exception):
    """The call has no key, or none Steno accepts; the message says which."""


class MissingApiKey(Unauthenticated):
    """The call carries no ``authorization: Bearer <key>`` metadata (or a malformed one)."""


class UnknownApiKey(Unauthenticated):
    """The key is not one this server issued."""


class RevokedApiKey(Unauthenticated):
    """Key ``key_id`` was revoked."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id} was revoked; ask an admin for a new one")
        self.key_id = key_id


class AdminKeyRequired(Exception):
    """The key is good, but ``service`` takes admin keys only and ``key_id`` is a user's."""

    def __init__(self, service: str, key_id: str) -> None:
        super().__init__(f"{service} needs an admin key; key {key_id} is a user key")
        self.service = service
        self.key_id = key_id
