"""The local engine: faster-whisper (CTranslate2) on this machine's CPU or GPU.

The model loads once per process, on first use or at start-up via :meth:`load`, and every
inference runs on one dedicated thread so the event loop keeps serving. A recording longer
than ``piece_seconds`` is decoded as a stream and transcribed in pieces cut in its pauses, so
memory is bounded by the piece, not the recording; each piece (or a short file whole) is
decoded window by window, skipping silence with VAD, or, from ``batch_min_seconds`` on, in
faster-whisper's parallel batches. The lexicon's phrases go in as the initial prompt. A
cancelled transcription stops at the model's next call (see :class:`Interruptible`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av

from steno.common.jobs import Segment, Transcript
from steno.transcriber.engines.chunking import (
    SAMPLE_RATE,
    Samples,
    Stopped,
    UndecodableAudio,
    decode_mono,
    pieces_on_silence,
)
from steno.transcriber.engines.models import ResolvedModel
from steno.transcriber.engines.port import EngineError, TranscriptionOptions

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from faster_whisper.transcribe import Segment as WhisperSegment
    from faster_whisper.transcribe import TranscriptionInfo

__all__ = ["Interruptible", "LocalWhisperEngine", "Stopped"]

log = logging.getLogger(__name__)

# Whisper reads at most 223 prompt tokens; a few hundred characters of phrases fit well.
MAX_VOCABULARY_CHARS = 600

# When a 30 s window's text gzips better than this, Whisper takes it for a decoding loop and
# decodes the window again at rising temperatures. Its default, 2.4, is crossed by speech
# that really repeats: the ratio is about the number of times the text says the same thing
# (a sentence said three times: 3.3), while a loop that runs to the window's token limit is
# at 15 or more. Speech said over and over fell through every temperature to a random
# sample at 1.0, which is kept if its ratio passes (and a random sample may hold any token,
# a run of CJK characters from tiny.en too) or, with its low log-probability, taken for
# silence, and the window dropped: a clip repeated to 45 s lost its first 30 s. Above 6, a
# window is still decoded again, but only when it repeats itself more than speech does.
COMPRESSION_RATIO_THRESHOLD = 6.0


class LocalWhisperEngine:
    name = "local"

    def __init__(
        self,
        model: ResolvedModel,
        *,
        compute_type: str = "int8",
        beam_size: int = 5,
        cpu_threads: int = 0,
        vad_filter: bool = True,
        batch_min_seconds: float = 300.0,
        batch_size: int = 8,
        piece_seconds: float = 600.0,
    ) -> None:
        self._resolved = model
        self._compute_type = compute_type
        self._beam_size = beam_size
        self._cpu_threads = cpu_threads
        self._vad_filter = vad_filter
        self._batch_min_seconds = batch_min_seconds
        self._batch_size = batch_size
        self._piece_seconds = piece_seconds
        self._model: WhisperModel | None = None
        self._calls: Interruptible | None = None
        # One inference at a time per process: the model already uses every core it is given.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="whisper")

    @property
    def model_name(self) -> str:
        return self._resolved.name

    async def load(self) -> None:
        """Loads the model now rather than on the first job."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._loaded)

    async def transcribe(self, audio: Path, options: TranscriptionOptions) -> Transcript:
        stop = threading.Event()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._transcribe, audio, options, stop
            )
        except asyncio.CancelledError:
            # The thread cannot be cancelled; it checks this before each call into the model
            # instead, so it is free for the next job, and a stopping process can exit, once
            # the call under way returns.
            stop.set()
            raise

    def _loaded(self) -> WhisperModel:
        if self._model is None:
            from faster_whisper import WhisperModel

            log.info("loading whisper model", extra={"model": self.model_name})
            model = WhisperModel(
                self._resolved.location,
                device="auto",
                compute_type=self._compute_type,
                cpu_threads=self._cpu_threads,
            )
            # Every pipeline, sequential or batched, calls CTranslate2 through this attribute.
            self._calls = model.model = Interruptible(model.model)
            self._model = model
        return self._model

    def _transcribe(
        self, audio: Path, options: TranscriptionOptions, stop: threading.Event
    ) -> Transcript:
        model = self._loaded()
        # This thread runs one transcription at a time: the calls are this one's until it ends.
        assert self._calls is not None
        self._calls.stop = stop
        language = None
        if options.language is not None:
            language = _whisper_language(
                options.language, model.supported_languages, self.model_name
            )
        # The prompt conditions decoding on the lexicon's phrases: every batch of a long
        # file, and the first window of a short one, whose text then carries it forward.
        prompt = _glossary(options.vocabulary)
        found: list[Segment] = []
        detected: tuple[str, float] | None = None
        end = 0.0
        try:
            duration = _duration_seconds(audio)
            for offset, source, seconds in self._sources(audio, duration, stop):
                # Later pieces keep the language heard in the first.
                segments, info = self._decode(
                    model, source, seconds, language or (detected and detected[0]), prompt
                )
                detected = detected or (info.language, info.language_probability)
                # The segments are a lazy generator: decoding happens while it is consumed.
                for segment in segments:
                    if stop.is_set():
                        raise Stopped(f"transcription stopped after {offset + segment.end:.1f} s")
                    found.append(
                        Segment(offset + segment.start, offset + segment.end, segment.text.strip())
                    )
                    if duration:
                        # Whisper's last timestamp can overrun the container's duration.
                        options.on_progress(min(1.0, (offset + segment.end) / duration))
                end = offset + info.duration
        except (av.error.FFmpegError, UndecodableAudio) as exc:
            raise EngineError(
                f"the audio could not be decoded ({exc}); upload a valid audio file",
                code="INVALID_ARGUMENT",
            ) from exc
        if detected is None:
            raise EngineError("the file holds no audio samples", code="INVALID_ARGUMENT")
        options.on_progress(1.0)
        return Transcript(
            text=" ".join(s.text for s in found if s.text),
            segments=found,
            language=detected[0],
            # A requested language is not a detection; Whisper reports 1.0 for it.
            language_probability=None if language else detected[1],
            duration_seconds=duration or end,
            model=self.model_name,
        )

    def _sources(
        self, audio: Path, duration: float | None, stop: threading.Event
    ) -> Iterator[tuple[float, str | Samples, float | None]]:
        """What to decode, as (offset, file or samples, seconds): the file itself when it is
        short, else pieces of at most ``piece_seconds`` cut in pauses, decoded one at a time,
        so that memory does not grow with the length of the recording."""
        if duration is not None and duration <= self._piece_seconds:
            yield 0.0, str(audio), duration
            return
        blocks = decode_mono(audio, stop)
        for piece in pieces_on_silence(blocks, int(self._piece_seconds * SAMPLE_RATE)):
            yield piece.offset, piece.samples, len(piece.samples) / SAMPLE_RATE

    def _decode(
        self,
        model: WhisperModel,
        source: str | Samples,
        seconds: float | None,
        language: str | None,
        prompt: str | None,
    ) -> tuple[Iterable[WhisperSegment], TranscriptionInfo]:
        from faster_whisper import BatchedInferencePipeline

        decoded: tuple[Iterable[WhisperSegment], TranscriptionInfo]
        if seconds is not None and seconds >= self._batch_min_seconds:
            # Long audio: VAD cuts it into speech windows decoded in parallel batches.
            decoded = BatchedInferencePipeline(model).transcribe(
                source,
                language=language,
                beam_size=self._beam_size,
                initial_prompt=prompt,
                batch_size=self._batch_size,
            )
        else:
            decoded = model.transcribe(
                source,
                language=language,
                beam_size=self._beam_size,
                initial_prompt=prompt,
                vad_filter=self._vad_filter,
                compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
            )
        return decoded


class Interruptible:
    """faster-whisper's CTranslate2 model, made to stop a cancelled transcription between
    its calls.

    A call into CTranslate2 cannot be interrupted, and faster-whisper hands over a window's
    segments only once the window is decoded: at every fallback temperature it needs, or,
    in batched mode, a whole batch of windows at once, and the first of them only after the
    audio's first pass. Checked between segments alone, a stopped job kept its thread
    decoding for up to 4 s on an idle 2-core machine (a batch of 8 windows of tiny.en: the
    encoder 1.6 s, the decoder 1.8 s), several times that on a busy one, and a stopping
    process waited for it at exit. Checked before each encode, decode and language
    detection, the thread ends when the call under way returns.
    """

    CALLS = frozenset({"encode", "generate", "detect_language", "align"})

    def __init__(self, model: Any) -> None:
        self._model = model
        # The current transcription's: once it is set, every further call raises Stopped.
        self.stop = threading.Event()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._model, name)
        if name not in self.CALLS:
            return attribute

        def checked(*args: Any, **kwargs: Any) -> Any:
            if self.stop.is_set():
                raise Stopped(f"transcription stopped before the model's next {name}")
            return attribute(*args, **kwargs)

        return checked


def _glossary(vocabulary: Sequence[str]) -> str | None:
    """The lexicon's phrases as Whisper's initial prompt, cut to what it reads.

    Measured on the spoken term fixtures with tiny.en, a "Glossary: …" prompt beat hotwords
    both on term recall and on the text around the terms: hotwords listed with commas made
    the model punctuate the speech like a list, and without commas it repeated them.
    """
    if not vocabulary:
        return None
    phrases = ""
    for phrase in vocabulary:
        candidate = f"{phrases}, {phrase}" if phrases else phrase
        if len(candidate) > MAX_VOCABULARY_CHARS:
            break
        phrases = candidate
    return f"Glossary: {phrases}."


def _duration_seconds(audio: Path) -> float | None:
    """The container's stated duration, without decoding; None if it does not say.
    EngineError if the file has no audio stream at all (a video-only MP4, say)."""
    with av.open(str(audio)) as container:
        if not container.streams.audio:
            raise EngineError(
                "the file has no audio stream; upload a recording with sound",
                code="INVALID_ARGUMENT",
            )
        if container.duration is None:
            return None
        return float(container.duration / av.time_base)


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
