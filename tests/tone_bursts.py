"""Long synthetic recordings whose pauses are known: tone bursts separated by silences.

Speech-like enough for the chunker (loud stretches a second or two long, pauses between them,
a faint noise floor throughout) and written in a streaming loop, so a test can make a file of
any length, over the 25 MB upload limit, without holding it in memory.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 16_000


@dataclass(frozen=True)
class ToneBursts:
    path: Path
    duration: float  # seconds
    gaps: list[tuple[float, float]]  # the silent stretches, start and end in seconds

    def in_gap(self, time: float, *, margin: float = 0.1) -> bool:
        """Whether ``time`` lies in a pause, at least ``margin`` seconds from its edges."""
        return any(start + margin <= time <= end - margin for start, end in self.gaps)


def write_tone_bursts(
    path: Path,
    seconds: float,
    *,
    seed: int = 0,
    burst: tuple[float, float] = (1.0, 2.0),
    gap: tuple[float, float] = (0.5, 0.8),
) -> ToneBursts:
    """Writes a 16 kHz 16-bit mono WAV of about ``seconds``: bursts of a random length in
    ``burst`` and pauses of a random length in ``gap``, starting with a burst."""
    rng = np.random.default_rng(seed)
    gaps: list[tuple[float, float]] = []
    written = 0
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        while written < seconds * RATE:
            length = int(rng.uniform(*burst) * RATE)
            t = np.arange(length) / RATE
            pitch = rng.uniform(150, 400)
            tone = np.sin(2 * np.pi * pitch * t) + 0.5 * np.sin(2 * np.pi * 2.5 * pitch * t)
            envelope = np.sin(np.pi * t / t[-1]).clip(0) ** 0.5
            _write(out, 0.3 * tone * envelope, rng)
            written += length
            silence = int(rng.uniform(*gap) * RATE)
            _write(out, np.zeros(silence), rng)
            gaps.append((written / RATE, (written + silence) / RATE))
            written += silence
    return ToneBursts(path, written / RATE, gaps)


def _write(out: wave.Wave_write, signal: np.ndarray, rng: np.random.Generator) -> None:
    noisy = signal + rng.normal(0, 0.001, len(signal))
    out.writeframes((np.clip(noisy, -1, 1) * 32767).astype("<i2").tobytes())
