"""Which speech engines there are, which one a job gets when its upload names none (the
gateway's default) and which ones a transcriber runs."""

from __future__ import annotations

from pathlib import PurePath
from typing import Literal, get_args

from pydantic import field_validator
from pydantic_settings import SettingsConfigDict

from steno.common.settings.base import CONFIG, StenoSettings

EngineName = Literal["local", "openai"]
ENGINE_NAMES: tuple[str, ...] = get_args(EngineName)


class EngineChoice(StenoSettings):
    # The engine a job gets when its upload names none.
    engine: EngineName = "local"
    # The engines a transcriber runs, comma-separated; unset means only the default engine.
    engines: str | None = None

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

    @property
    def served_engines(self) -> list[str]:
        """The engines a transcriber runs."""
        return self.engines.split(",") if self.engines else [self.engine]


class LocalModel(StenoSettings):
    """The local engine's model: what the transcriber loads, and what the gateway needs to
    know to refuse a language the model cannot transcribe before anything is queued."""

    model_config = CONFIG | SettingsConfigDict(env_prefix="STENO_WHISPER_")

    # A faster-whisper model name or directory; unset means the bundled tiny.en, and "base"
    # the multilingual base model when the `multilingual` extra is installed.
    model: str | None = None

    @property
    def name(self) -> str:
        return self.model or "tiny.en"

    @property
    def english_only(self) -> bool:
        """Whisper's English-only models are named ``*.en`` (the bundled one too)."""
        return PurePath(self.name.rstrip("/")).name.endswith(".en")
