"""What the gateway reads: its uploads' limits, besides the settings every service has."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from steno.common.settings import (
    EngineChoice,
    LocalModel,
    QuotaSettings,
    RetentionSettings,
    ServiceSettings,
    StenoSettings,
)
from steno.common.settings.base import CONFIG, blank_is_unset
from steno.common.settings.webhooks import WebhookSettings
from steno.common.storage import MAX_PARTS, MIN_PART_BYTES

MIB = 1024 * 1024


class UploadSettings(StenoSettings):
    # Uploads are stored in parts this big: a broken upload continues from its last whole
    # part, and an upload holds about two parts in memory.
    upload_part_bytes: int = Field(default=8 * MIB, ge=MIN_PART_BYTES)
    max_upload_bytes: int = Field(default=2 * 1024 * MIB, ge=1)
    # Uploads one gateway takes at once; more get RESOURCE_EXHAUSTED.
    max_concurrent_uploads: int = Field(default=64, ge=1)
    # An upload whose client sends nothing for this long is abandoned.
    upload_idle_timeout_seconds: float = Field(default=60, gt=0)

    @model_validator(mode="after")
    def _uploads_fit_in_parts(self) -> UploadSettings:
        if self.max_upload_bytes > MAX_PARTS * self.upload_part_bytes:
            raise ValueError(
                f"max_upload_bytes needs more than {MAX_PARTS} parts of upload_part_bytes: "
                "raise STENO_UPLOAD_PART_BYTES"
            )
        return self


class AccessSettings(StenoSettings):
    # "disabled" lets every caller in as one tenant, for a gateway behind a proxy that
    # authenticates; otherwise every RPC but health and reflection needs an API key.
    auth: Literal["enabled", "disabled"] = "enabled"
    # Keys accepted besides the database's, e.g. from a Kubernetes Secret: comma-separated
    # `<tenant>:<user|admin>:<key>`. They are not listed by ListApiKeys, and are revoked by
    # removing them here.
    api_keys: SecretStr | None = None

    _blank_is_unset = field_validator("api_keys", mode="before")(blank_is_unset)

    @property
    def enabled(self) -> bool:
        return self.auth == "enabled"


class TlsSettings(StenoSettings):
    """The gateway serves TLS with a certificate and its key (PEM files, e.g. a mounted
    Kubernetes Secret); with a client CA it also requires client certificates it signed."""

    model_config = CONFIG | SettingsConfigDict(env_prefix="STENO_TLS_")

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None

    _blank_is_unset = field_validator("cert_file", "key_file", "client_ca_file", mode="before")(
        blank_is_unset
    )

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("set both STENO_TLS_CERT_FILE and STENO_TLS_KEY_FILE, or neither")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("STENO_TLS_CLIENT_CA_FILE needs STENO_TLS_CERT_FILE and _KEY_FILE")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class GatewaySettings(ServiceSettings):
    access: AccessSettings = Field(default_factory=AccessSettings)
    # Not `tls`: STENO_TLS is the client's switch, and may be set in the same shell.
    serving_tls: TlsSettings = Field(default_factory=TlsSettings)
    uploads: UploadSettings = Field(default_factory=UploadSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    # Only the default engine an upload gets, and the names it may choose from.
    engine_choice: EngineChoice = Field(default_factory=EngineChoice)
    # The local engine's model, for the languages an upload may ask it for.
    local_model: LocalModel = Field(default_factory=LocalModel)
    # The OpenAI-compatible HTTP API's port, on STENO_GRPC_HOST; 0 turns it off.
    http_port: int = Field(default=8080, ge=0, le=65535)
    # Whether uploads may name a webhook, and where it may point.
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
