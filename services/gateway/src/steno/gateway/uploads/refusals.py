"""Why an upload is refused or stopped; the API maps each to its gRPC status, and the facts
each carries (the request_id, a limit, the offset to continue from) to its ErrorInfo."""

from __future__ import annotations

import uuid

from steno.common.disk_space import StorageFull
from steno.common.quotas import QuotaExceeded


class InvalidUpload(Exception):
    """The client sent something Steno cannot accept; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class WebhookUrlRefused(InvalidUpload):
    """The upload's webhook_url is not one Steno will call (steno.common.webhooks.addresses),
    or webhooks are off."""

    def __init__(self, message: str) -> None:
        super().__init__("metadata.webhook_url", message)


class UploadTooLarge(Exception):
    """The stream grew past the configured maximum, ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload is larger than the {limit}-byte limit")
        self.limit = limit


# Refusals for a limit: nothing of the upload is kept, not even a resumable upload's parts,
# as sending it again cannot succeed while the limit stands.
OVER_LIMIT = (UploadTooLarge, QuotaExceeded, StorageFull)


class UploadsBusy(Exception):
    """The gateway is taking as many uploads at once as it is configured for, ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the server is already taking {limit} uploads; retry shortly")
        self.limit = limit


class UploadStalled(Exception):
    """The client stopped sending before the end of the stream."""


class UploadRefused(Exception):
    """A refusal of the upload with ``request_id``."""

    def __init__(self, request_id: str, message: str) -> None:
        super().__init__(message)
        self.request_id = request_id


class RequestConflict(UploadRefused):
    """The request_id was used before for different audio, by job ``job_id``."""

    def __init__(self, request_id: str, job_id: uuid.UUID) -> None:
        super().__init__(
            request_id,
            f"request_id {request_id!r} was already used for different audio (job {job_id}); "
            "use a new request_id for a new file",
        )
        self.job_id = job_id


class UploadRaced(UploadRefused):
    """A concurrent upload with the same request_id held the key and then gave it up."""


class UploadNotFound(UploadRefused):
    """No unfinished upload and no job has the request_id."""


class UploadFinished(UploadRefused):
    """A stream tried to continue an upload that has already become job ``job_id``."""

    def __init__(self, request_id: str, job_id: uuid.UUID) -> None:
        super().__init__(
            request_id,
            f"the upload with request_id {request_id!r} is already complete: it is job {job_id}",
        )
        self.job_id = job_id


class WrongOffset(UploadRefused):
    """A stream tried to continue an upload from somewhere other than its stored end,
    ``committed_bytes``."""

    def __init__(self, request_id: str, committed_bytes: int) -> None:
        super().__init__(
            request_id,
            f"the upload with request_id {request_id!r} has {committed_bytes} bytes stored; "
            f"continue it from offset {committed_bytes}",
        )
        self.committed_bytes = committed_bytes


class UploadTakenOver(UploadRefused):
    """Another stream started or continued the same upload; this one may write no more."""
