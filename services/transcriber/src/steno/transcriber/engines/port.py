"""The speech engine port: audio file in, transcript out.

An engine fails in one of two ways, and the difference decides what happens to the job:
:class:`EngineError` is permanent (bad audio, a rejected key, no quota) and fails the job;
:class:`EngineUnavailable` is temporary (rate limited, a network error, a 5xx) and sends the
job back to the queue to be tried again later, up to an attempt limit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from steno.common.jobs import Transcript

# Called with the fraction of the audio transcribed so far (0..1): audio seconds done over
# the duration. Engines may call it from any thread; it must be cheap and never raise.
ProgressCallback = Callable[[float], None]


def _ignore_progress(fraction: float) -> None:
    return None


class EngineError(Exception):
    """The engine cannot transcribe this audio, and trying again will not help.

    ``code`` is the canonical gRPC code name the job's error carries; the message is for a
    person and says what to do.
    """

    def __init__(self, message: str, *, code: str = "INTERNAL") -> None:
        super().__init__(message)
        self.code = code


class EngineUnavailable(Exception):
    """The engine could not transcribe this audio now, but may later (rate limited, the
    network or the provider down). ``retry_after`` is the provider's hint in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class TranscriptionOptions:
    """What a job asks of the engine besides the audio."""

    # BCP-47 tag of the speech; None means detect it.
    language: str | None = None
    # Words and names the speech is likely to contain (the lexicon's display phrases), used
    # to bias recognition towards them: Whisper's prompt and hotwords, OpenAI's ``prompt``.
    vocabulary: Sequence[str] = ()
    on_progress: ProgressCallback = field(default=_ignore_progress)


class Engine(Protocol):
    @property
    def name(self) -> str:
        """The name clients choose it by, e.g. ``local``."""
        ...

    async def transcribe(self, audio: Path, options: TranscriptionOptions) -> Transcript:
        """Transcribes the file. Raises EngineError or EngineUnavailable."""
        ...
