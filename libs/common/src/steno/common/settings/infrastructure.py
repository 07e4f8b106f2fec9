"""The services behind the ports: database, broker and object store. Unset means the
embedded default (SQLite, an in-process queue, a directory) under the data directory."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from steno.common.settings.base import CONFIG, StenoSettings, blank_is_unset


class DatabaseSettings(StenoSettings):
    model_config = CONFIG | SettingsConfigDict(env_prefix="STENO_DATABASE_")

    # Secret: it may hold the password.
    url: SecretStr | None = None

    _blank_is_unset = field_validator("url", mode="before")(blank_is_unset)

    def url_or_default(self, data_dir: Path) -> str:
        """The configured database, or the embedded SQLite file under ``data_dir``."""
        if self.url is not None:
            return self.url.get_secret_value()
        return f"sqlite+aiosqlite:///{(data_dir / 'steno.db').resolve()}"


class BrokerSettings(StenoSettings):
    model_config = CONFIG | SettingsConfigDict(env_prefix="STENO_AMQP_")

    url: SecretStr | None = None
    queue: str = "steno.transcription.requested"
    # The topic exchange JobUpdated events go through, from every writer to every gateway.
    events_exchange: str = "steno.job-updated"
    prefetch: int = Field(default=1, ge=1)
    # Redeliveries a failing request gets (a handler error, or its worker dying) before it
    # is dead-lettered to {STENO_AMQP_QUEUE}.dead; changing it needs a new queue.
    delivery_limit: int = Field(default=5, ge=1)

    @property
    def webhooks_queue(self) -> str:
        """The queue of webhook events: beside the job queue, named after it."""
        return f"{self.queue}.webhooks"

    _blank_is_unset = field_validator("url", mode="before")(blank_is_unset)


class StoreSettings(StenoSettings):
    model_config = CONFIG | SettingsConfigDict(env_prefix="STENO_S3_")

    # minio-py's host:port, or an http(s):// URL.
    endpoint: str | None = None
    access_key: SecretStr = SecretStr("")
    secret_key: SecretStr = SecretStr("")
    bucket: str = "steno-audio"
    secure: bool = False
    region: str | None = None

    _blank_is_unset = field_validator("endpoint", mode="before")(blank_is_unset)

    @staticmethod
    def objects_dir(data_dir: Path) -> Path:
        """Where the embedded object store keeps audio."""
        return data_dir / "objects"
