"""Process configuration, read once from ``STENO_*`` environment variables.

Every process builds one frozen :class:`Settings` in its ``__main__`` and passes it down;
nothing else reads the environment. An unset database, object store or broker URL means the
embedded default (SQLite, a directory, an in-process queue) under ``data_dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EngineName = Literal["local"]

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Everything a Steno process can be told; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="STENO_", frozen=True, extra="ignore")

    # Where the embedded defaults keep their files.
    data_dir: Path = Path(".steno")

    database_url: str | None = None
    amqp_url: SecretStr | None = None
    amqp_queue: str = "steno.transcription.requested"
    amqp_prefetch: int = Field(default=1, ge=1)

    s3_endpoint: str | None = None
    s3_access_key: SecretStr = SecretStr("")
    s3_secret_key: SecretStr = SecretStr("")
    s3_bucket: str = "steno-audio"
    s3_secure: bool = False
    s3_region: str | None = None
    # Multipart part size: the most audio an upload holds in memory at once, per upload.
    s3_part_size_bytes: int = Field(default=8 * MIB, ge=5 * MIB)

    audio_retention_hours: float = Field(default=24, ge=0)
    cleanup_interval_minutes: float = Field(default=60, gt=0)
    cleanup_batch_size: int = Field(default=500, ge=1, le=1000)
    max_upload_bytes: int = Field(default=2 * 1024 * MIB, ge=1)
    # Uploads one gateway takes at once; more get RESOURCE_EXHAUSTED.
    max_concurrent_uploads: int = Field(default=64, ge=1)
    # An upload whose client sends nothing for this long is abandoned.
    upload_idle_timeout_seconds: float = Field(default=60, gt=0)

    engine: EngineName = "local"
    # A faster-whisper model name or directory; unset means the bundled tiny.en.
    whisper_model: str | None = None
    whisper_compute_type: str = "int8"
    whisper_beam_size: int = Field(default=5, ge=1)
    whisper_cpu_threads: int = Field(default=0, ge=0)

    grpc_host: str = "0.0.0.0"
    # Unset means the service's own default (gateway 50051, transcriber 50052).
    grpc_port: int | None = Field(default=None, ge=0, le=65535)
    # Unset means the service's own default (gateway 9090, transcriber 9091); 0 turns it off.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)

    log_level: str = "INFO"

    @field_validator("database_url", "s3_endpoint", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("amqp_url", mode="before")
    @classmethod
    def _blank_url_is_unset(cls, value: object) -> object:
        return None if value == "" else value

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
