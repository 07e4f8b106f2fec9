"""The audio the pipeline benchmarks transcribe: the project's speech fixture said over
and over, as long as a benchmark needs."""

from __future__ import annotations

import wave
from pathlib import Path

SPEECH = Path(__file__).parents[1] / "tests" / "fixtures" / "audio" / "speech.wav"


def repeated_speech(path: Path, seconds: float) -> Path:
    """A WAV file of the speech fixture repeated to at least ``seconds``."""
    with wave.open(str(SPEECH), "rb") as source:
        params, frames = source.getparams(), source.readframes(source.getnframes())
        said = source.getnframes() / source.getframerate()
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        for _ in range(max(1, round(seconds / said))):
            out.writeframes(frames)
    return path
