"""The OpenAI engine: the transcription API of OpenAI, or of any server that speaks it.

``OPENAI_BASE_URL`` points it at an OpenAI-compatible server (speaches, vLLM, LocalAI) and
``OPENAI_API_KEY`` holds the key, read by the official client as usual. A file within the
upload limit is sent as it is; a larger one is cut, in its pauses, into compact chunks that
each fit (see :mod:`.chunking`), sent in order, and the transcripts stitched back together.

The client never retries: a request that may succeed later raises EngineUnavailable and the
job goes back to the broker with a delay, so a worker never sleeps on a rate limit (see
:mod:`.openai_failures` for what each failure means).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import av
import openai
from openai.types.audio import TranscriptionVerbose

from steno.common.jobs import Segment, Transcript
from steno.transcriber.engines.chunking import (
    CONTENT_TYPE,
    Chunk,
    UndecodableAudio,
    ffmpeg_reason,
    max_chunk_seconds,
    split_on_silence,
)
from steno.transcriber.engines.openai_failures import ApiFailures
from steno.transcriber.engines.port import EngineError, TranscriptionOptions
from steno.transcriber.engines.whisper_languages import language_code

log = logging.getLogger(__name__)

DEFAULT_MODEL = "whisper-1"
# The API refuses uploads over 25 MB.
MAX_REQUEST_BYTES = 25 * 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 600.0
# The form fields and multipart framing around the file; the prompt is the largest of them.
_FORM_BYTES = 16 * 1024
# Whisper reads only the last 224 tokens of a prompt. Names take more tokens per character
# than prose, so 600 characters keeps a vocabulary whole in the languages Whisper knows best.
MAX_PROMPT_CHARS = 600
# The key a keyless OpenAI-compatible server is sent: the client insists on one.
_NO_KEY = "unused"

# FFmpeg's name for a container, and the file extension the API recognises it by.
_UPLOAD_SUFFIXES = {
    "wav": ".wav",
    "mp3": ".mp3",
    "ogg": ".ogg",
    "flac": ".flac",
    "mp4": ".m4a",
    "webm": ".webm",
}
_CONTENT_TYPES = {
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".flac": "audio/flac",
    ".m4a": "audio/mp4",
    ".webm": "audio/webm",
}


class OpenAIEngine:
    """Transcribes with ``audio.transcriptions`` of the OpenAI API (``verbose_json``)."""

    name = "openai"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str = DEFAULT_MODEL,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        """``api_key`` and ``base_url`` default to ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``.

        Without a key, requests to a custom ``base_url`` go out with a placeholder (local
        servers often need none); requests to OpenAI itself fail without being sent.
        """
        # Fails now, not on the first long file, if the limit cannot hold a useful chunk.
        max_chunk_seconds(max_request_bytes - _FORM_BYTES)
        self._model = model
        self._max_request_bytes = max_request_bytes
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        custom_url = base_url or os.environ.get("OPENAI_BASE_URL")
        self._client: openai.AsyncOpenAI | None = None
        if key or custom_url:
            self._client = openai.AsyncOpenAI(
                api_key=key or _NO_KEY, base_url=base_url, timeout=timeout, max_retries=0
            )
        self._failures = ApiFailures(self.base_url, model, secret=key or "")

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        """The API's base URL, without any credentials it may carry: safe to log and show."""
        if self._client is None:
            return "https://api.openai.com/v1"
        parts = urlsplit(str(self._client.base_url))
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    async def close(self) -> None:
        """Closes the client's connections."""
        if self._client is not None:
            await self._client.close()

    async def transcribe(self, audio: Path, options: TranscriptionOptions) -> Transcript:
        if self._client is None:
            raise EngineError(
                "no API key is set for the OpenAI engine: set OPENAI_API_KEY "
                "(and OPENAI_BASE_URL for an OpenAI-compatible server)",
                code="UNAUTHENTICATED",
            )
        request = _Request(
            language=options.language.split("-")[0].lower() if options.language else None,
            prompt=vocabulary_prompt(options.vocabulary),
        )
        probe = await asyncio.to_thread(_Probe.of, audio)
        budget = self._max_request_bytes - _FORM_BYTES
        if probe.suffix is not None and probe.size <= budget:
            # Small enough, and in a format the API reads: sent exactly as uploaded.
            part = await self._send(self._client, audio, f"audio{probe.suffix}", request)
            options.on_progress(1.0)
            duration = part.duration or probe.duration or 0.0
            return self._transcript([part.placed(0.0, duration)], request, duration)
        with tempfile.TemporaryDirectory(prefix="steno-openai-") as workdir:
            chunks = await self._split(audio, Path(workdir), budget)
            total = chunks[-1].end if chunks else 0.0
            log.info(
                "transcribing in chunks",
                extra={"chunks": len(chunks), "duration_seconds": round(total, 1)},
            )
            parts: list[_Part] = []
            for chunk in chunks:
                part = await self._send(self._client, chunk.path, chunk.path.name, request)
                parts.append(part.placed(chunk.start, chunk.duration))
                options.on_progress(chunk.end / total)
        return self._transcript(parts, request, total)

    async def _split(self, audio: Path, workdir: Path, max_bytes: int) -> list[Chunk]:
        stop = threading.Event()
        split = functools.partial(split_on_silence, audio, workdir, max_bytes=max_bytes, stop=stop)
        future = asyncio.get_running_loop().run_in_executor(None, split)
        try:
            return await asyncio.shield(future)
        except UndecodableAudio as exc:
            raise _undecodable(str(exc)) from exc
        except asyncio.CancelledError:
            # The thread cannot be cancelled; it stops at the next frame it decodes. Wait
            # for that, or the temporary directory would be removed under it.
            stop.set()
            with contextlib.suppress(Exception):
                await future
            raise

    async def _send(
        self, client: openai.AsyncOpenAI, path: Path, upload_name: str, request: _Request
    ) -> _Part:
        content_type = _CONTENT_TYPES.get(Path(upload_name).suffix, CONTENT_TYPE)
        try:
            with path.open("rb") as file:
                result = await client.audio.transcriptions.create(
                    file=(upload_name, file, content_type),
                    model=self._model,
                    response_format="verbose_json",
                    timestamp_granularities=["segment"],
                    language=request.language if request.language else openai.omit,
                    prompt=request.prompt if request.prompt else openai.omit,
                )
        except openai.APIError as exc:
            # Not chained: the client's own message carries the whole error body, in which
            # OpenAI echoes part of a rejected key.
            raise self._failures.classify(exc) from None
        try:
            if not isinstance(result, TranscriptionVerbose):
                raise TypeError("the answer is not JSON")
            return _Part.parse(result)
        except (AttributeError, TypeError, ValueError) as exc:
            raise EngineError(
                f"the transcription API at {self.base_url} did not answer in verbose_json "
                f"({exc}); use a server and model that support it",
                code="FAILED_PRECONDITION",
            ) from None

    def _transcript(self, parts: Sequence[_Part], request: _Request, duration: float) -> Transcript:
        # Each part reports the language it heard; the one heard longest is the recording's.
        heard: dict[str, float] = {}
        for part in parts:
            if part.language:
                heard[part.language] = heard.get(part.language, 0.0) + (part.duration or 0.0)
        language = max(heard, key=heard.__getitem__) if heard else request.language or ""
        segments = [segment for part in parts for segment in part.segments]
        return Transcript(
            text=" ".join(part.text for part in parts if part.text),
            segments=segments,
            language=language,
            duration_seconds=duration,
            model=self._model,
        )


def vocabulary_prompt(vocabulary: Sequence[str]) -> str | None:
    """The prompt that biases recognition towards the vocabulary: its phrases, in order and
    once each, as many whole ones as fit in :data:`MAX_PROMPT_CHARS`."""
    prompt = ""
    for phrase in dict.fromkeys(p.strip() for p in vocabulary):
        candidate = f"{prompt}, {phrase}" if prompt else phrase
        if phrase and len(candidate) <= MAX_PROMPT_CHARS:
            prompt = candidate
    return prompt or None


@dataclass(frozen=True, slots=True)
class _Request:
    """The parameters every request of one transcription shares."""

    language: str | None
    prompt: str | None


@dataclass(frozen=True, slots=True)
class _Part:
    """One response, in the times of the audio it was given."""

    text: str
    segments: list[Segment]
    language: str | None
    duration: float | None

    @classmethod
    def parse(cls, result: TranscriptionVerbose) -> _Part:
        """Reads a response. The client does not validate it: compatible servers may leave
        out the language and duration, which are done without, or the text and segment
        times, which raise AttributeError, TypeError or ValueError."""
        text = getattr(result, "text", None)
        if not isinstance(text, str):
            raise ValueError("the answer has no text")
        duration = getattr(result, "duration", None)
        return cls(
            text=text.strip(),
            segments=[
                Segment(float(s.start), float(s.end), str(s.text).strip())
                for s in result.segments or ()
            ],
            language=language_code(getattr(result, "language", None)),
            duration=float(duration) if duration else None,
        )

    def placed(self, offset: float, duration: float) -> _Part:
        """The part moved to where it starts in the whole recording, its segments kept
        within it: a server may round an end past the audio it was given."""
        if self.segments:
            segments = [
                Segment(
                    offset + _clamp(s.start, 0.0, duration),
                    offset + _clamp(s.end, _clamp(s.start, 0.0, duration), duration),
                    s.text,
                )
                for s in self.segments
            ]
        elif self.text:
            # A server that ignored timestamp_granularities: the part is one segment.
            segments = [Segment(offset, offset + duration, self.text)]
        else:
            segments = []
        return replace(self, segments=segments, duration=duration)


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high) if high > 0 else max(value, low)


@dataclass(frozen=True, slots=True)
class _Probe:
    """What the container of an audio file says about it."""

    # The extension the API knows the container by; None for one it does not take.
    suffix: str | None
    duration: float | None
    size: int

    @classmethod
    def of(cls, audio: Path) -> _Probe:
        try:
            with av.open(str(audio)) as container:
                has_audio = bool(container.streams.audio)
                names = container.format.name.split(",")
                duration = container.duration / av.time_base if container.duration else None
        except av.error.FFmpegError as exc:
            raise _undecodable(ffmpeg_reason(exc)) from exc
        if not has_audio:
            raise _undecodable("the file has no audio stream")
        suffix = next((_UPLOAD_SUFFIXES[n] for n in names if n in _UPLOAD_SUFFIXES), None)
        return cls(suffix, duration, audio.stat().st_size)


def _undecodable(reason: str) -> EngineError:
    return EngineError(
        f"the audio could not be decoded ({reason}); upload a valid audio file",
        code="INVALID_ARGUMENT",
    )
