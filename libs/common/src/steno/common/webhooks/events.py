"""What a webhook says: one JSON event when a job ends.

```json
{"type": "job.completed",                  // or job.failed, job.cancelled
 "timestamp": "2026-12-07T12:00:00Z",      // when the job ended
 "data": {"job_id": "…", "state": "COMPLETED",
          "error": null,                    // or {"code": "INVALID_ARGUMENT", "message": "…"}
          "links": {"job": "steno.v1.TranscriptionService/GetJob?job_id=…",
                    "transcript": "steno.v1.TranscriptionService/GetTranscript?job_id=…"}}}
```

The event is small on purpose: it says which job ended and how, and the receiver reads the
rest (the transcript) with its own key. ``transcript`` is null unless the job completed.
The event's id is derived from the job and its terminal state, so every attempt, by any
consumer, carries the same ``webhook-id`` and a receiver can drop the repeats.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC

from steno.common.jobs import Job, JobState

EVENT_TYPES = {
    JobState.COMPLETED: "job.completed",
    JobState.FAILED: "job.failed",
    JobState.CANCELLED: "job.cancelled",
}
_SERVICE = "steno.v1.TranscriptionService"


def event_id(job: Job) -> str:
    """The same for every attempt at the event of this job's end."""
    return f"evt_{uuid.uuid5(job.job_id, job.state.value).hex}"


def event_body(job: Job) -> bytes:
    """The JSON event of an ended job, as it is signed and sent."""
    assert job.complete_time is not None, "an ended job has its end time"
    links = {
        "job": f"{_SERVICE}/GetJob?job_id={job.job_id}",
        "transcript": (
            f"{_SERVICE}/GetTranscript?job_id={job.job_id}"
            if job.state is JobState.COMPLETED
            else None
        ),
    }
    error = {"code": job.error.code, "message": job.error.message} if job.error else None
    event = {
        "type": EVENT_TYPES[job.state],
        "timestamp": job.complete_time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "job_id": str(job.job_id),
            "state": job.state.value,
            "error": error,
            "links": links,
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()
