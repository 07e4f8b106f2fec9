"""The upload path, one module a step: :mod:`.receiving` → :mod:`.storing` (through
:mod:`.multipart`, recording parts with :mod:`.resumable`) → :mod:`.committing` (with
:mod:`.idempotency`) → publishing; :mod:`.pipeline` runs them in that order, within the
concurrency :mod:`.slots`, and :mod:`.refusals` says why an upload stops."""

from steno.gateway.uploads.pipeline import Uploads
from steno.gateway.uploads.refusals import (
    InvalidUpload,
    RequestConflict,
    UploadFinished,
    UploadNotFound,
    UploadRaced,
    UploadsBusy,
    UploadStalled,
    UploadTakenOver,
    UploadTooLarge,
    WebhookUrlRefused,
    WrongOffset,
)
from steno.gateway.uploads.resumable import UploadStatus

__all__ = [
    "InvalidUpload",
    "RequestConflict",
    "UploadFinished",
    "UploadNotFound",
    "UploadRaced",
    "UploadStalled",
    "UploadStatus",
    "UploadTakenOver",
    "UploadTooLarge",
    "Uploads",
    "UploadsBusy",
    "WebhookUrlRefused",
    "WrongOffset",
]
