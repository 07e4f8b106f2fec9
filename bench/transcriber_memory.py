"""Transcriber peak memory against recording length: does a long recording cost more?

Run with ``make bench`` (or ``python -m bench.transcriber_memory``). For each length, a fresh
process loads the bundled model and transcribes a generated recording (tone bursts and
pauses, written as a 16 kHz WAV) with the local engine, once in pieces of
STENO_WHISPER_CHUNK_SECONDS' default and once whole, as faster-whisper alone would; the
growth of its peak RSS over the loaded model is reported, with the ratio to the shortest
(baseline) recording. In pieces, memory should stay near the baseline while the recording
grows 8x; whole, it grows with the recording. :func:`file_growth` measures the same for a
given recording: bench.long_audio reports it for its ten minutes of speech.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from steno.transcriber.engines.local import LocalWhisperEngine
from steno.transcriber.engines.models import resolve_model
from steno.transcriber.engines.port import TranscriptionOptions
from steno.transcriber.settings import WhisperSettings
from tests.tone_bursts import write_tone_bursts

MINUTES = (10, 20, 40, 80)
WHOLE = 1e9  # a piece longer than any recording: the file is decoded in one go


def measure(minutes: float, piece_seconds: float) -> float:
    """Peak RSS growth in MB of a fresh process transcribing ``minutes`` of tone bursts."""
    return _growth_in_process("--one", str(minutes), str(piece_seconds))


def file_growth(recording: Path, piece_seconds: float) -> float:
    """Peak RSS growth in MB of a fresh process transcribing ``recording``."""
    return _growth_in_process("--file", str(recording), str(piece_seconds))


def _growth_in_process(*args: str) -> float:
    done = subprocess.run(
        [sys.executable, "-m", "bench.transcriber_memory", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    growth: float = json.loads(done.stdout.splitlines()[-1])["growth_mb"]
    return growth


async def one(minutes: float, piece_seconds: float) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        recording = write_tone_bursts(Path(workdir) / "long.wav", minutes * 60)
        await growth(recording.path, piece_seconds)


async def growth(recording: Path, piece_seconds: float) -> None:
    """Prints how much this process's peak RSS grows over the loaded model's while the
    local engine transcribes ``recording``."""
    with tempfile.TemporaryDirectory() as workdir:
        engine = LocalWhisperEngine(resolve_model(None, Path(workdir)), piece_seconds=piece_seconds)
        await engine.load()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        await engine.transcribe(recording, TranscriptionOptions())
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_mb": (after - before) / 1024}))


def main() -> None:
    piece = WhisperSettings().chunk_seconds
    rows = [(m, measure(m, piece), measure(m, WHOLE)) for m in MINUTES]
    _, pieces_base, whole_base = rows[0]
    print(f"minutes  in {piece:g} s pieces  ratio   whole file  ratio")
    for minutes, pieces, whole in rows:
        print(
            f"{minutes:>7} {pieces:>12.0f} MB {pieces / pieces_base:>5.1f}x "
            f"{whole:>9.0f} MB {whole / whole_base:>5.1f}x"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        asyncio.run(one(float(sys.argv[2]), float(sys.argv[3])))
    elif sys.argv[1:2] == ["--file"]:
        asyncio.run(growth(Path(sys.argv[2]), float(sys.argv[3])))
    else:
        main()
