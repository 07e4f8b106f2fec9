"""Which calls the client sends again by itself when the gateway answers UNAVAILABLE, and
how: gRPC's own retries (gRFC A6), asked for in the channel's service config.

The gateway answers every UNAVAILABLE with a ``google.rpc.RetryInfo`` and the same delay in
the ``grpc-retry-pushback-ms`` trailer; gRPC waits that long before the next attempt instead
of its own backoff, so a client does not hammer a gateway whose database is coming back.

Only calls that may run twice with the same result are retried: the reads, and two writes
that are idempotent by design (SetTenantQuota sets the same overrides again; RevokeApiKey
of a revoked key answers with the key as revoked the first time). Not retried here:

- UploadAudio, a stream: the SDK continues it itself from the bytes the gateway stored
  (``steno.client.uploading``), under its request_id; and GetUploadStatus, which that loop
  asks and counts an unavailable answer of among its tries (retried here too, one outage
  would cost up to four times the attempts);
- WatchJob: the SDK resumes a watch itself, without repeating what it already yielded;
- CreateLexicon and CreateApiKey (a retry after one that worked would make a second),
  UpdateLexicon (it bumps the version), CancelJob, DeleteJob and DeleteLexicon (a retry
  after one that worked is refused, as there is nothing left to cancel or delete), and
  RunCleanup (it deletes audio).

RESOURCE_EXHAUSTED is not retried: the reads take no quota, so on them it is a response
larger than the channel accepts, which no retry mends.
"""

from __future__ import annotations

import json

RETRIED_METHODS = {
    "steno.v1.TranscriptionService": ("GetJob", "ListJobs", "GetTranscript"),
    "steno.v1.LexiconService": ("GetLexicon", "ListLexicons"),
    "steno.v1.AdminService": (
        "GetStorageStats",
        "ListApiKeys",
        "GetTenantQuota",
        "SetTenantQuota",
        "RevokeApiKey",
    ),
}
RETRY_POLICY = {
    # The first call and three more (gRPC allows five at most), backing off 0.2 s, 0.4 s,
    # 0.8 s (randomised) where the gateway gave no pushback.
    "maxAttempts": 4,
    "initialBackoff": "0.2s",
    "maxBackoff": "5s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": [
                {"service": service, "method": method}
                for service, methods in RETRIED_METHODS.items()
                for method in methods
            ],
            "retryPolicy": RETRY_POLICY,
        }
    ]
}
CHANNEL_OPTIONS = [
    ("grpc.enable_retries", 1),
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
]
