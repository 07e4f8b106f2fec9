"""Long recordings: ten minutes (two with ``--quick``) of the English speech fixtures,
transcribed by faster-whisper window after window (``WhisperModel.transcribe``, what Steno
does with short audio) and in parallel batches (``BatchedInferencePipeline``, what it does
from STENO_WHISPER_BATCH_MIN_SECONDS on), both with the local engine's default settings.

A model's threads are fixed when it loads, so each cpu_threads setting runs in a process of
its own, in which the two sides alternate in A/B rounds on one loaded model. The figures:
batched audio seconds per wall second over sequential's (what batching buys); the word
error rate between their texts, and of each against what was said (what batching costs);
the ratio at one and two threads (how it scales); Steno's LocalWhisperEngine over bare
batched faster-whisper on the same file (what the wrapper costs); and a fresh transcriber's
peak memory growth on the file.

``python -m bench.long_audio --sides BASELINE,STENO FILE`` is one such process; it prints
the rounds as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jiwer

from bench import transcriber_memory
from bench.harness import Figure, Scale, ab_rounds
from bench.stack import Stack
from steno.transcriber.engines.local import LocalWhisperEngine
from steno.transcriber.engines.models import resolve_model
from steno.transcriber.engines.port import TranscriptionOptions
from steno.transcriber.settings import WhisperSettings
from tests.support import normalise

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures" / "audio"
# Said in turn, so that no 30 s window holds the same sentence twice, as in most real
# speech (tests/integration/test_long_audio.py is about speech that does repeat).
CLIPS = ("speech", "terms1", "terms2", "terms3", "terms4")
MODELS = Path(tempfile.gettempdir()) / "steno-bench-models"
SIDES = ("sequential", "batched", "engine")
# How batching scales with the threads the model runs on, besides the configured count.
SCALING_THREADS = (1, 2)


@dataclass(frozen=True)
class Speech:
    """A recording and the words said in it."""

    path: Path
    said: str

    @property
    def seconds(self) -> float:
        with wave.open(str(self.path), "rb") as source:
            return source.getnframes() / source.getframerate()


def speech_file(path: Path, seconds: float) -> Speech:
    """A 16 kHz WAV of the fixtures in turn, as many as fit in ``seconds`` (at least one)."""
    clips = []
    for name in CLIPS:
        with wave.open(str(FIXTURES / f"{name}.wav"), "rb") as clip:
            params = clip.getparams()
            frames = clip.readframes(clip.getnframes())
        clips.append((frames, params.nframes, (FIXTURES / f"{name}.txt").read_text().strip()))
    limit, written = seconds * params.framerate, 0
    said: list[str] = []
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        while not said or written + clips[0][1] <= limit:
            frames, count, text = clips[0]
            out.writeframes(frames)
            written, clips = written + count, clips[1:] + clips[:1]
            said.append(text)
    return Speech(path, " ".join(said))


@dataclass
class Side:
    """One way of transcribing the file, timed: each call returns audio seconds per wall
    second and keeps the text, so the two sides' texts can be compared round by round."""

    transcribe: Callable[[Path], str]
    speech: Speech
    texts: list[str] = field(default_factory=list)

    def __call__(self) -> float:
        start = time.perf_counter()
        self.texts.append(self.transcribe(self.speech.path))
        return self.speech.seconds / (time.perf_counter() - start)


def sides(threads: int) -> dict[str, Callable[[Path], str]]:
    """The ways to transcribe, on models loaded with ``threads`` (0: CTranslate2's default),
    each with the engine's default settings."""
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    settings = WhisperSettings()
    resolved = resolve_model(settings.model, MODELS)
    model = WhisperModel(resolved.location, device="auto", compute_type=settings.compute_type,
                         cpu_threads=threads)  # fmt: skip
    batched = BatchedInferencePipeline(model)
    # The engine loads a model of its own, on its first (warm-up) call. Every file counts
    # as long for it, so that the shorter ones of --quick take the path of ten minutes.
    engine = LocalWhisperEngine(
        resolved, compute_type=settings.compute_type, beam_size=settings.beam_size,
        cpu_threads=threads, vad_filter=settings.vad_filter, batch_min_seconds=0,
        batch_size=settings.batch_size, piece_seconds=settings.chunk_seconds,
    )  # fmt: skip

    def sequential(audio: Path) -> str:
        segments, _ = model.transcribe(
            str(audio), beam_size=settings.beam_size, vad_filter=settings.vad_filter
        )
        return " ".join(s.text.strip() for s in segments)

    def in_batches(audio: Path) -> str:
        segments, _ = batched.transcribe(
            str(audio), beam_size=settings.beam_size, batch_size=settings.batch_size
        )
        return " ".join(s.text.strip() for s in segments)

    def through_steno(audio: Path) -> str:
        return asyncio.run(engine.transcribe(audio, TranscriptionOptions())).text

    return {"sequential": sequential, "batched": in_batches, "engine": through_steno}


@dataclass(frozen=True)
class Rounds:
    """What one process measured: Steno's side's rate over the baseline's, round by round,
    the median rates, and each round's two texts (baseline, Steno)."""

    ratios: list[float]
    rates: dict[str, str]
    texts: list[tuple[str, str]]

    def wer_between(self) -> list[float]:
        return [_wer(baseline, steno) for baseline, steno in self.texts]

    def wer_against(self, said: str, side: int) -> list[float]:
        return [_wer(said, texts[side]) for texts in self.texts]


def _wer(reference: str, hypothesis: str) -> float:
    """Word errors only: case and punctuation aside."""
    return float(jiwer.wer(normalise(reference), normalise(hypothesis)))


def measure(speech: Speech, baseline: str, steno: str, *, threads: int, rounds: int) -> Rounds:
    """A/B rounds of two sides in this process, after a warm-up of each."""
    ways = sides(threads)
    a, b = Side(ways[baseline], speech), Side(ways[steno], speech)
    figure = ab_rounds(steno, unit="audio s/s", baseline=baseline, measure_baseline=a,
                       measure_steno=b, rounds=rounds)  # fmt: skip
    # Each side's first text is its warm-up's.
    return Rounds(figure.values, figure.rates, list(zip(a.texts[1:], b.texts[1:], strict=True)))


def measured(speech: Speech, baseline: str, steno: str, *, threads: int, rounds: int) -> Rounds:
    """:func:`measure` in a fresh process, whose models load with ``threads``."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.long_audio", "--sides", f"{baseline},{steno}",
         "--threads", str(threads), "--rounds", str(rounds), str(speech.path)],
        check=True, capture_output=True, text=True, timeout=7200,
    ).stdout  # fmt: skip
    result = json.loads(out.splitlines()[-1])
    return Rounds(result["ratios"], result["rates"], [(a, b) for a, b in result["texts"]])


def run(base: Stack, scale: Scale) -> list[Figure]:
    """The long-audio figures. Of ``base`` only the work directory is used: the model runs
    in processes of this benchmark's own."""
    seconds = scale.pick(full=600, quick=120, tiny=10)
    speech = speech_file(base.workdir / "long-audio.wav", seconds)
    return figures(speech, rounds=scale.pick(full=3, quick=1, tiny=1))


def figures(speech: Speech, *, rounds: int) -> list[Figure]:
    """Every figure of this benchmark: ``rounds`` rounds at the configured cpu_threads, one
    at each of SCALING_THREADS."""
    settings = WhisperSettings()
    params: dict[str, object] = {"audio_seconds": round(speech.seconds), "rounds": rounds,
                                 "batch_size": settings.batch_size,
                                 "cpu_threads": settings.cpu_threads}  # fmt: skip
    batched = measured(speech, "sequential", "batched", threads=settings.cpu_threads,
                       rounds=rounds)  # fmt: skip
    found = [
        Figure("long audio, batched: audio s per wall s", batched.ratios,
               baseline="sequential faster-whisper", target=1.5, params=params,
               rates=batched.rates),
        Figure("long audio, batched: WER vs sequential", batched.wer_between(), unit="",
               target=0.05, lower_is_better=True, params=params),
        Figure("long audio, sequential: WER vs what was said", batched.wer_against(speech.said, 0),
               unit="", params=params),
        Figure("long audio, batched: WER vs what was said", batched.wer_against(speech.said, 1),
               unit="", params=params),
    ]  # fmt: skip
    for threads in SCALING_THREADS:
        scaled = measured(speech, "sequential", "batched", threads=threads, rounds=1)
        found.append(
            Figure(f"long audio, batched at cpu_threads={threads}", scaled.ratios,
                   baseline="sequential faster-whisper",
                   params={**params, "cpu_threads": threads, "rounds": 1}, rates=scaled.rates)
        )  # fmt: skip
    engine = measured(speech, "batched", "engine", threads=settings.cpu_threads, rounds=rounds)
    found.append(
        Figure("long audio through LocalWhisperEngine", engine.ratios,
               baseline="bare batched faster-whisper", target=0.95, params=params,
               rates=engine.rates)
    )  # fmt: skip
    growth = transcriber_memory.file_growth(speech.path, settings.chunk_seconds)
    found.append(
        Figure("transcriber peak RSS growth, long audio", [growth], unit="MB",
               params={"audio_seconds": params["audio_seconds"]})
    )  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.long_audio")
    parser.add_argument("--sides", required=True, help=f"BASELINE,STENO of {', '.join(SIDES)}")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("audio", type=Path)
    args = parser.parse_args()
    baseline, steno = args.sides.split(",")
    # The words said are not needed to time the sides.
    rounds = measure(Speech(args.audio, ""), baseline, steno, threads=args.threads,
                     rounds=args.rounds)  # fmt: skip
    print(json.dumps(asdict(rounds)))


if __name__ == "__main__":
    main()
