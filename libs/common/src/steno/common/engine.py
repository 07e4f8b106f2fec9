"""The speech engine port: audio file in, transcript out."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from steno.common.jobs import Transcript


class EngineError(Exception):
    """The engine could not transcribe this audio; ``message`` is for a person."""

    def __init__(self, message: str, *, code: str = "INTERNAL") -> None:
        super().__init__(message)
        self.code = code


class Engine(Protocol):
    @property
    def name(self) -> str:
        """The name clients choose it by, e.g. ``local``."""
        ...

    async def transcribe(self, audio: Path, *, language: str | None) -> Transcript:
        """Transcribes the file; ``language`` None means detect it. Raises EngineError."""
        ...
