"""Why an upload is refused or stopped; the API maps each to its gRPC status."""

from __future__ import annotations

from steno.common.disk_space import StorageFull
from steno.common.quotas import QuotaExceeded


class InvalidUpload(Exception):
    """The client sent something Steno cannot accept; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UploadTooLarge(Exception):
    """The stream grew past the configured maximum."""


# Refusals for a limit: nothing of the upload is kept, not even a resumable upload's parts,
# as sending it again cannot succeed while the limit stands.
OVER_LIMIT = (UploadTooLarge, QuotaExceeded, StorageFull)


class RequestConflict(Exception):
    """The request_id was used before for different audio."""


class UploadRaced(Exception):
    """A concurrent upload with the same request_id held the key and then gave it up."""


class UploadStalled(Exception):
    """The client stopped sending before the end of the stream."""


class UploadsBusy(Exception):
    """The gateway is taking as many uploads at once as it is configured for."""


class UploadNotFound(Exception):
    """No unfinished upload and no job has the request_id."""


class UploadFinished(Exception):
    """A stream tried to continue an upload that has already become a job."""


class WrongOffset(Exception):
    """A stream tried to continue an upload from somewhere other than its stored end."""


class UploadTakenOver(Exception):
    """Another stream started or continued the same upload; this one may write no more."""
