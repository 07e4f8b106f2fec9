"""What every settings model shares: ``STENO_*`` environment variables, read once, frozen.

A ``.env`` file in the working directory may set them too; a variable set in the
environment wins over the file."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

CONFIG = SettingsConfigDict(env_prefix="STENO_", env_file=".env", frozen=True, extra="ignore")


class StenoSettings(BaseSettings):
    """A settings model read from ``STENO_*`` variables; concerns nest in it as fields of
    their own model, each with its own prefix, so the variable names stay flat."""

    model_config = CONFIG

    @classmethod
    def env_names(cls) -> set[str]:
        """Every environment variable this model (and the concerns nested in it) reads."""
        names: set[str] = set()
        prefix = cls.model_config.get("env_prefix", "")
        for name, field in cls.model_fields.items():
            kind = field.annotation
            if isinstance(kind, type) and issubclass(kind, StenoSettings):
                names |= kind.env_names()
            elif not (isinstance(kind, type) and issubclass(kind, BaseModel)):
                names.add(f"{prefix}{name}".upper())
        return names


def blank_is_unset(value: object) -> object:
    """An empty variable means the setting is not set (``STENO_DATABASE_URL=`` is embedded)."""
    return None if value == "" else value
