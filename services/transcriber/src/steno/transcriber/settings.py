"""What a transcriber reads: its engines and how it runs jobs, besides the settings every
service has."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from steno.common.settings import EngineChoice, LocalModel, ServiceSettings, StenoSettings
from steno.common.settings.base import CONFIG
from steno.common.settings.webhooks import WebhookSettings


class WhisperSettings(LocalModel):
    """The local engine (faster-whisper): its model, and how it runs it."""

    compute_type: str = "int8"
    beam_size: int = Field(default=5, ge=1)
    cpu_threads: int = Field(default=0, ge=0)
    # Skip silence (Silero VAD) before decoding.
    vad_filter: bool = True
    # Audio at least this long is transcribed in batches of batch_size windows.
    batch_min_seconds: float = Field(default=300, gt=0)
    batch_size: int = Field(default=8, ge=1)
    # Longer audio is decoded as a stream and transcribed this many seconds at a time, cut in
    # pauses: what bounds a transcriber's memory, whatever the recording's length.
    chunk_seconds: float = Field(default=600, ge=1)


class OpenAISettings(StenoSettings):
    """The OpenAI engine; the client itself reads OPENAI_API_KEY and OPENAI_BASE_URL."""

    model_config = CONFIG | SettingsConfigDict(env_prefix="STENO_OPENAI_")

    model: str = "whisper-1"
    timeout_seconds: float = Field(default=600, gt=0)


class JobRunSettings(StenoSettings):
    """How a worker runs a job: its retries, progress and lease."""

    # A job whose engine is temporarily unavailable (rate limited, network, 5xx) is retried
    # after first, then doubling delays up to max, until it has run max_attempts times.
    engine_max_attempts: int = Field(default=5, ge=1)
    engine_retry_first_seconds: float = Field(default=10, ge=0)
    engine_retry_max_seconds: float = Field(default=600, ge=0)
    # How often a running job's progress is written, renewing its lease.
    progress_interval_seconds: float = Field(default=2, gt=0)
    # How long a worker's claim on a PROCESSING job lasts without a renewal: after that the
    # job is taken to be abandoned (its worker died) and is queued again.
    lease_seconds: float = Field(default=60, gt=0)


class TranscriberSettings(ServiceSettings):
    engine_choice: EngineChoice = Field(default_factory=EngineChoice)
    whisper: WhisperSettings = Field(default_factory=WhisperSettings)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    runs: JobRunSettings = Field(default_factory=JobRunSettings)
    # The transcriber delivers the webhooks of ended jobs (steno.common.webhooks).
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
