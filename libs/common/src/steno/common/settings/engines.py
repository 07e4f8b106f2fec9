"""Which speech engines there are, which one a job gets when its upload names none (the
gateway's default) and which ones a transcriber runs."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import field_validator

from steno.common.settings.base import StenoSettings

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
