"""Translation between domain records and ``steno.v1`` messages: the gateway answers with
them, and the operator commands (`steno keys`, `steno tenants`) print them, the same shapes
over the API and on the database directly."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from steno.common.api_keys import ApiKey, Role
from steno.common.jobs import Job, JobState, Segment, WebhookDelivery
from steno.common.lexicons import Lexicon
from steno.common.quotas import QUOTA_NAMES, QuotaLimits, QuotaUsage
from steno.v1 import admin_service_pb2, job_pb2, lexicon_pb2

# Job fields every view carries as they are, and those that are times.
_JOB_FIELDS = (
    "filename",
    "content_type",
    "size_bytes",
    "sha256",
    "language",
    "lexicon_id",
    "lexicon_version",
    "engine",
    "model",
    "attempts",
    "progress",
    "labels",
    "warnings",
    "webhook_url",
)
_JOB_TIMES = (
    "create_time",
    "start_time",
    "complete_time",
    "audio_expire_time",
    "audio_delete_time",
)


def job_to_proto(
    job: Job, view: job_pb2.JobView, deliveries: Sequence[WebhookDelivery] = ()
) -> job_pb2.Job:
    """The job as the API shows it; its webhook ``deliveries`` are read apart (GetJob)."""
    fields: dict[str, Any] = {name: getattr(job, name) for name in _JOB_FIELDS}
    fields.update((name, timestamp(getattr(job, name))) for name in _JOB_TIMES)
    message = job_pb2.Job(
        job_id=str(job.job_id),
        state=state_to_proto(job.state),
        language_probability=job.language_probability or 0.0,
        **fields,
    )
    if job.duration_seconds is not None:
        message.duration.CopyFrom(_duration(job.duration_seconds))
    if job.error is not None:
        message.error.code = job.error.code
        message.error.message = job.error.message
    if view == job_pb2.JOB_VIEW_FULL:
        message.original_text = job.original_text
        message.processed_text = job.processed_text
        message.segments.extend(segment_to_proto(s) for s in job.segments)
        message.replacements.extend(
            job_pb2.Replacement(original=r.original, replacement=r.replacement, offset=r.offset)
            for r in job.replacements
        )
    message.webhook_deliveries.extend(webhook_delivery_to_proto(d) for d in deliveries)
    return message


def webhook_delivery_to_proto(delivery: WebhookDelivery) -> job_pb2.WebhookDelivery:
    return job_pb2.WebhookDelivery(
        event_id=delivery.event_id,
        attempt=delivery.attempt,
        attempt_time=timestamp(delivery.attempt_time),
        status_code=delivery.status_code,
        error=delivery.error,
    )


def state_to_proto(state: JobState) -> job_pb2.JobState:
    return cast(job_pb2.JobState, job_pb2.JobState.Value(f"JOB_STATE_{state.value}"))


def state_from_proto(state: int) -> JobState:
    """The domain state; ValueError for UNSPECIFIED or an unknown number."""
    name = job_pb2.JobState.Name(state).removeprefix("JOB_STATE_")
    return JobState(name)


def segment_to_proto(segment: Segment) -> job_pb2.Segment:
    return job_pb2.Segment(
        start=_duration(segment.start), end=_duration(segment.end), text=segment.text
    )


def lexicon_to_proto(lexicon: Lexicon) -> lexicon_pb2.Lexicon:
    return lexicon_pb2.Lexicon(
        lexicon_id=str(lexicon.lexicon_id),
        name=lexicon.name,
        language=lexicon.language,
        version=lexicon.version,
        entries=[
            lexicon_pb2.LexiconEntry(phrase=e.phrase, sounds_like=e.sounds_like)
            for e in lexicon.entries
        ],
        create_time=timestamp(lexicon.create_time),
        update_time=timestamp(lexicon.update_time),
    )


ROLES = {
    Role.USER: admin_service_pb2.API_KEY_ROLE_USER,
    Role.ADMIN: admin_service_pb2.API_KEY_ROLE_ADMIN,
}


def api_key_to_proto(key: ApiKey) -> admin_service_pb2.ApiKey:
    return admin_service_pb2.ApiKey(
        key_id=key.key_id,
        tenant=key.tenant,
        name=key.name,
        role=ROLES[key.role],
        create_time=timestamp(key.create_time),
        last_use_time=timestamp(key.last_use_time),
        revoke_time=timestamp(key.revoke_time),
    )


def tenant_quota_to_proto(
    tenant: str, overrides: QuotaLimits, in_force: QuotaLimits, usage: QuotaUsage
) -> admin_service_pb2.TenantQuota:
    """A tenant's own overrides, the limits in force (overrides over the defaults) and what
    it uses now."""
    return admin_service_pb2.TenantQuota(
        tenant=tenant,
        overrides=limits_to_proto(overrides),
        limits=limits_to_proto(in_force),
        usage=admin_service_pb2.QuotaUsage(
            stored_audio_bytes=usage.stored_audio_bytes,
            concurrent_jobs=usage.concurrent_jobs,
            audio_hours_per_day=usage.audio_hours_per_day,
        ),
    )


def limits_to_proto(limits: QuotaLimits) -> admin_service_pb2.QuotaLimits:
    """The limits that are set (an unset one has no field)."""
    return admin_service_pb2.QuotaLimits(
        **{name: value for name in QUOTA_NAMES if (value := getattr(limits, name)) is not None}
    )


def role_from_proto(role: int) -> Role:
    """The domain role (USER for UNSPECIFIED); ValueError for an unknown number."""
    if role == admin_service_pb2.API_KEY_ROLE_UNSPECIFIED:
        return Role.USER
    for known, value in ROLES.items():
        if value == role:
            return known
    raise ValueError(f"role {role} is not an ApiKeyRole")


def _duration(seconds: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    timestamp = Timestamp()
    timestamp.FromDatetime(value)
    return timestamp
