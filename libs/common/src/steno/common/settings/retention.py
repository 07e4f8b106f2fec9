"""How long Steno keeps what it stores: read by the gateway (the default it gives a job,
when an unfinished upload's parts expire) and by the janitor (which deletes them)."""

from __future__ import annotations

from pydantic import Field

from steno.common.settings.base import StenoSettings


class RetentionSettings(StenoSettings):
    audio_retention_hours: float = Field(default=24, ge=0)
    # Partial uploads (multipart uploads never completed) nobody continued for this long are
    # discarded.
    stale_upload_hours: float = Field(default=24, gt=0)
