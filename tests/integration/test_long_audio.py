"""The local engine on a long file whose speech repeats: the whole recording is transcribed,
in English, as well as the clip it repeats."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import jiwer

from steno.common.jobs import Transcript
from steno.transcriber.engines.local import LocalWhisperEngine
from steno.transcriber.engines.port import TranscriptionOptions
from tests.support import AUDIO, normalise

CLIP = "terms1"
TIMES = 4  # 45 s: Whisper's first 30 s window holds the clip almost three times
# The clip's own pauses are under 1.5 s; a longer stretch without a segment went unheard.
MAX_GAP_SECONDS = 5.0
NOT_LATIN = re.compile(r"[^\u0000-\u024f\u2000-\u206f]")
# How much worse than the clip alone the long file may be heard. CTranslate2 takes other
# floating-point paths on other CPUs, so the same model's words differ a little from one
# machine to the next (0.00 to 0.06 over the clip seen); a window lost as silence, the bug
# this guards against, costs two thirds of the words (0.6 and more).
WER_MARGIN = 0.15


def repeated(clip: Path, times: int, into: Path) -> Path:
    """A WAV of ``clip`` said ``times`` times over, made here rather than kept in the repo."""
    with wave.open(str(clip), "rb") as source:
        params, frames = source.getparams(), source.readframes(source.getnframes())
    with wave.open(str(into), "wb") as out:
        out.setparams(params)
        out.writeframes(frames * times)
    return into


def longest_gap(transcript: Transcript) -> float:
    """The longest stretch of the recording, start and end included, without a segment."""
    edges = [0.0]
    for segment in transcript.segments:
        edges += [segment.start, segment.end]
    edges.append(transcript.duration_seconds)
    return max(edges[i + 1] - edges[i] for i in range(0, len(edges), 2))


async def test_a_long_file_of_repeated_speech_is_heard_throughout(
    whisper_engine: LocalWhisperEngine, tmp_path: Path
) -> None:
    """Speech that repeats gzips like a decoding loop; with Whisper's default threshold
    every retry of the first window failed, and the window was dropped as silence."""
    said = (AUDIO / f"{CLIP}.txt").read_text().strip()
    clip = await whisper_engine.transcribe(AUDIO / f"{CLIP}.wav", TranscriptionOptions())
    audio = repeated(AUDIO / f"{CLIP}.wav", TIMES, tmp_path / "repeated.wav")

    transcript = await whisper_engine.transcribe(audio, TranscriptionOptions())

    clip_wer = jiwer.wer(normalise(said), normalise(clip.text))
    long_wer = jiwer.wer(normalise(" ".join([said] * TIMES)), normalise(transcript.text))
    print(f"WER {long_wer:.3f} (the clip alone: {clip_wer:.3f}): {transcript.text!r}")
    assert transcript.duration_seconds > 40
    assert longest_gap(transcript) < MAX_GAP_SECONDS, transcript.segments
    assert not NOT_LATIN.findall(transcript.text)
    assert long_wer <= clip_wer + WER_MARGIN
