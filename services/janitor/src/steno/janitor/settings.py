"""What the janitor reads: how it sweeps, besides the settings every service has."""

from __future__ import annotations

from pydantic import Field, field_validator

from steno.common.settings import RetentionSettings, ServiceSettings, StenoSettings
from steno.common.settings.base import blank_is_unset
from steno.common.settings.webhooks import WebhookSettings


class CleanupSettings(StenoSettings):
    cleanup_batch_size: int = Field(default=500, ge=1, le=1000)
    # How often `steno dev` runs the janitor's sweep (a cluster runs it as a CronJob).
    cleanup_interval_minutes: float = Field(default=60, gt=0)
    # The reconciler publishes a QUEUED job the broker never confirmed once it is this old
    # (younger ones may still be being published by their gateway).
    publish_grace_seconds: float = Field(default=60, ge=0)
    # The reconciler queues again the webhook event of an ended job with no attempt at it
    # recorded once the job ended this long ago (a queued event has been tried by then,
    # unless its queue was far behind: a repeat then carries the same webhook-id).
    webhook_republish_grace_seconds: float = Field(default=600, ge=0)


class JanitorSettings(ServiceSettings):
    cleanup: CleanupSettings = Field(default_factory=CleanupSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    # Read for STENO_WEBHOOK_RETRY_HOURS: events older than that are not queued again.
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    # The Prometheus Pushgateway (host:port or URL) a run pushes its steno_janitor_* metrics
    # to; unset, it pushes nothing.
    metrics_pushgateway: str | None = None

    _blank_is_unset = field_validator("metrics_pushgateway", mode="before")(blank_is_unset)
