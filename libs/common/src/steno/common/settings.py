"""Process configuration, read once from ``STENO_*`` environment variables.

Every process builds one frozen :class:`Settings` in its ``__main__`` and passes it down;
nothing else reads the environment. An unset database, object store or broker URL means the
embedded default (SQLite, a directory, an in-process queue) under ``data_dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from steno.common.storage import MAX_PARTS, MIN_PART_BYTES

EngineName = Literal["local", "openai"]
ENGINE_NAMES: tuple[str, ...] = get_args(EngineName)

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Everything a Steno process can be told; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="STENO_", frozen=True, extra="ignore")

    # Where the embedded defaults keep their files.
    data_dir: Path = Path(".steno")

    database_url: str | None = None
    amqp_url: SecretStr | None = None
    amqp_queue: str = "steno.transcription.requested"
    # The topic exchange JobUpdated events go through, from every writer to every gateway.
    amqp_events_exchange: str = "steno.job-updated"
    amqp_prefetch: int = Field(default=1, ge=1)
    # Redeliveries a failing request gets (a handler error, or its worker dying) before it
    # is dead-lettered to {STENO_AMQP_QUEUE}.dead; changing it needs a new queue.
    amqp_delivery_limit: int = Field(default=5, ge=1)

    s3_endpoint: str | None = None
    s3_access_key: SecretStr = SecretStr("")
    s3_secret_key: SecretStr = SecretStr("")
    s3_bucket: str = "steno-audio"
    s3_secure: bool = False
    s3_region: str | None = None
    # Uploads are stored in parts this big: a broken upload continues from its last whole
    # part, and an upload holds about two parts in memory.
    upload_part_bytes: int = Field(default=8 * MIB, ge=MIN_PART_BYTES)

    audio_retention_hours: float = Field(default=24, ge=0)
    cleanup_interval_minutes: float = Field(default=60, gt=0)
    cleanup_batch_size: int = Field(default=500, ge=1, le=1000)
    # The janitor discards partial uploads (multipart uploads never completed) this old.
    stale_upload_hours: float = Field(default=24, gt=0)
    max_upload_bytes: int = Field(default=2 * 1024 * MIB, ge=1)
    # Uploads one gateway takes at once; more get RESOURCE_EXHAUSTED.
    max_concurrent_uploads: int = Field(default=64, ge=1)
    # An upload whose client sends nothing for this long is abandoned.
    upload_idle_timeout_seconds: float = Field(default=60, gt=0)

    # The engine a job gets when its upload names none.
    engine: EngineName = "local"
    # The engines a transcriber runs, comma-separated; unset means only the default engine.
    engines: str | None = None
    # A faster-whisper model name or directory; unset means the bundled tiny.en, and "base"
    # the multilingual base model when the `multilingual` extra is installed.
    whisper_model: str | None = None
    whisper_compute_type: str = "int8"
    whisper_beam_size: int = Field(default=5, ge=1)
    whisper_cpu_threads: int = Field(default=0, ge=0)
    # Skip silence (Silero VAD) before decoding.
    whisper_vad_filter: bool = True
    # Audio at least this long is transcribed in batches of whisper_batch_size windows.
    whisper_batch_min_seconds: float = Field(default=300, gt=0)
    whisper_batch_size: int = Field(default=8, ge=1)
    # Longer audio is decoded as a stream and transcribed this many seconds at a time, cut in
    # pauses: what bounds a transcriber's memory, whatever the recording's length.
    whisper_chunk_seconds: float = Field(default=600, ge=1)
    # The OpenAI engine's model; the client itself reads OPENAI_API_KEY and OPENAI_BASE_URL.
    openai_model: str = "whisper-1"
    openai_timeout_seconds: float = Field(default=600, gt=0)
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
    # The reconciler publishes a QUEUED job the broker never confirmed once it is this old
    # (younger ones may still be being published by their gateway).
    publish_grace_seconds: float = Field(default=60, ge=0)

    grpc_host: str = "0.0.0.0"
    # Unset means the service's own default (gateway 50051, transcriber 50052).
    grpc_port: int | None = Field(default=None, ge=0, le=65535)
    # Unset means the service's own default (gateway 9090, transcriber 9091); 0 turns it off.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)

    log_level: str = "INFO"
    # Test only: comma-separated points at which the process dies (see steno.common.faults).
    fault_points: str = ""

    @field_validator("database_url", "s3_endpoint", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("amqp_url", mode="before")
    @classmethod
    def _blank_url_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("engines")
    @classmethod
    def _known_engines(cls, value: str | None) -> str | None:
        if value is None:
            return None
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = sorted(set(names) - set(ENGINE_NAMES))
        if not names or unknown:
            raise ValueError(
                f"engines must name some of: {', '.join(ENGINE_NAMES)} "
                f"(unknown: {', '.join(unknown) or 'none given'})"
            )
        return ",".join(names)

    @model_validator(mode="after")
    def _uploads_fit_in_parts(self) -> Settings:
        if self.max_upload_bytes > MAX_PARTS * self.upload_part_bytes:
            raise ValueError(
                f"max_upload_bytes needs more than {MAX_PARTS} parts of upload_part_bytes: "
                "raise STENO_UPLOAD_PART_BYTES"
            )
        return self

    @property
    def served_engines(self) -> list[str]:
        """The engines this transcriber runs."""
        return self.engines.split(",") if self.engines else [self.engine]

    @property
    def database_url_or_default(self) -> str:
        """The configured database, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'steno.db').resolve()}"

    def grpc_port_or(self, default: int) -> int:
        """The configured gRPC port, or the calling service's default."""
        return default if self.grpc_port is None else self.grpc_port

    def metrics_port_or(self, default: int) -> int:
        """The configured metrics port, or the calling service's default."""
        return default if self.metrics_port is None else self.metrics_port

    @property
    def objects_dir(self) -> Path:
        """Where the embedded object store keeps audio."""
        return self.data_dir / "objects"
