"""How Steno calls clients back when their jobs end (:mod:`steno.common.webhooks`)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from steno.common.settings.base import CONFIG, StenoSettings, blank_is_unset
from steno.common.webhooks.addresses import AddressPolicy


class WebhookSettings(StenoSettings):
    model_config = CONFIG | SettingsConfigDict(env_prefix="STENO_WEBHOOK_")

    # The operator's master secret; each tenant's signing secret is derived from it. Unset,
    # uploads that ask for a webhook are refused: events are never signed with a guessable key.
    secret: SecretStr | None = None
    # Comma-separated exceptions to the refused addresses: CIDRs (10.0.0.0/8, ::1/128) and
    # host[:port] (hooks.internal, 127.0.0.1:8080).
    allow: str = ""
    # The first retry waits this long, each later one twice as long as the one before.
    backoff_seconds: float = Field(default=10, gt=0)
    # No attempt is made later than this after the job ended; the last failure stands.
    retry_hours: float = Field(default=24, gt=0)
    # How long one attempt may take, connecting included.
    timeout_seconds: float = Field(default=10, gt=0)

    _blank_is_unset = field_validator("secret", mode="before")(blank_is_unset)

    @field_validator("allow")
    @classmethod
    def _allow_parses(cls, allow: str) -> str:
        AddressPolicy.parse(allow)
        return allow

    @property
    def enabled(self) -> bool:
        return self.secret is not None

    @property
    def policy(self) -> AddressPolicy:
        return AddressPolicy.parse(self.allow)
