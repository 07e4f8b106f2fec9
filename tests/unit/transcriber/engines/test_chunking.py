"""Long audio is cut into compact chunks that fit the upload limit, in its pauses, streaming."""

from __future__ import annotations

import itertools
import threading
import tracemalloc
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from steno.transcriber.engines.chunking import (
    MAX_CHUNK_SECONDS,
    MIN_CHUNK_SECONDS,
    SAMPLE_RATE,
    Chunk,
    Stopped,
    UndecodableAudio,
    decode_mono,
    max_chunk_seconds,
    pieces_on_silence,
    quietest_point,
    split_on_silence,
)
from tests.support import AUDIO
from tests.tone_bursts import write_tone_bursts

SPEECH_SECONDS = 8.03


def tone(seconds: float, pitch: float = 300.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * pitch * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def decoded(chunk: Chunk) -> tuple[float, int, int, str]:
    """Seconds, sample rate, channels and codec of a chunk file, as a server would see it."""
    with av.open(str(chunk.path)) as container:
        stream = container.streams.audio[0]
        frames = list(container.decode(stream))
        return (
            sum(f.samples / f.sample_rate for f in frames),
            stream.codec_context.sample_rate,
            stream.codec_context.channels,
            stream.codec_context.name,
        )


def test_the_cut_is_the_middle_of_the_pause() -> None:
    samples = np.concatenate([tone(1.0), silence(0.6), tone(1.0)])

    cut = quietest_point(samples)

    assert abs(cut / SAMPLE_RATE - 1.3) < 0.03


def test_a_real_pause_wins_over_a_short_dip() -> None:
    rng = np.random.default_rng(1)
    samples = np.concatenate([tone(0.5), silence(0.04), tone(1.5), silence(0.4), tone(0.5)])
    samples += rng.normal(0, 0.001, len(samples)).astype(np.float32)

    cut = quietest_point(samples)

    assert 2.05 <= cut / SAMPLE_RATE <= 2.35


def test_of_equal_pauses_the_latest_wins() -> None:
    samples = np.concatenate([tone(0.5), silence(0.5), tone(0.5), silence(0.5), tone(0.5)])

    assert abs(quietest_point(samples) / SAMPLE_RATE - 1.75) < 0.03


def test_a_chunk_holds_what_its_byte_limit_allows_up_to_twenty_minutes() -> None:
    assert max_chunk_seconds(25 * 1024 * 1024) == MAX_CHUNK_SECONDS == 20 * 60
    assert max_chunk_seconds(2_000_000) > 2 * max_chunk_seconds(1_000_000) * 0.99
    with pytest.raises(ValueError, match="too little audio"):
        max_chunk_seconds(5_000)


def test_long_audio_is_cut_in_its_pauses_into_chunks_under_the_limit(tmp_path: Path) -> None:
    bursts = write_tone_bursts(tmp_path / "long.wav", 90)
    limit = 64 * 1024

    chunks = split_on_silence(bursts.path, tmp_path, max_bytes=limit)

    assert len(chunks) >= 4
    assert all(chunk.path.stat().st_size <= limit for chunk in chunks)
    assert chunks[0].start == 0
    assert all(a.end == pytest.approx(b.start) for a, b in itertools.pairwise(chunks))
    assert chunks[-1].end == pytest.approx(bursts.duration, abs=0.01)
    # Every cut is in a pause; a cut anywhere would land in a burst most of the time.
    cuts = [chunk.end for chunk in chunks[:-1]]
    assert all(bursts.in_gap(cut) for cut in cuts), (cuts, bursts.gaps)
    for chunk in chunks:
        seconds, rate, channels, codec = decoded(chunk)
        assert seconds == pytest.approx(chunk.duration, abs=0.02)
        assert (rate, channels, codec) == (48_000, 1, "opus") or (rate, codec) == (16_000, "opus")


@pytest.mark.parametrize("name", ["speech.wav", "speech.mp3", "speech.m4a", "speech.webm"])
def test_every_format_decodes_to_16_khz_mono(tmp_path: Path, name: str) -> None:
    chunks = split_on_silence(AUDIO / name, tmp_path, max_bytes=1024 * 1024)

    assert len(chunks) == 1
    assert chunks[0].duration == pytest.approx(SPEECH_SECONDS, abs=0.1)
    blocks = list(decode_mono(AUDIO / name))
    assert all(block.dtype == np.float32 and block.ndim == 1 for block in blocks)
    assert sum(len(block) for block in blocks) == round(chunks[0].duration * SAMPLE_RATE)


def test_a_very_short_recording_is_padded_to_what_servers_accept(tmp_path: Path) -> None:
    source = write_wav(tmp_path / "short.wav", tone(0.2))

    [chunk] = split_on_silence(source, tmp_path, max_bytes=64 * 1024)

    assert chunk.duration == pytest.approx(0.2)
    assert decoded(chunk)[0] == pytest.approx(MIN_CHUNK_SECONDS, abs=0.02)


def test_audio_without_samples_gives_no_chunks(tmp_path: Path) -> None:
    source = write_wav(tmp_path / "empty.wav", silence(0))

    assert split_on_silence(source, tmp_path, max_bytes=64 * 1024) == []


def test_a_file_that_is_not_audio_is_undecodable(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("not audio at all\n" * 100)

    with pytest.raises(UndecodableAudio):
        split_on_silence(source, tmp_path, max_bytes=64 * 1024)


def test_splitting_stops_when_asked(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()

    with pytest.raises(Stopped):
        split_on_silence(AUDIO / "speech.wav", tmp_path, max_bytes=64 * 1024, stop=stop)


def test_memory_stays_bounded_whatever_the_length(tmp_path: Path) -> None:
    bursts = write_tone_bursts(tmp_path / "six-minutes.wav", 360)
    decoded_bytes = bursts.duration * SAMPLE_RATE * 4  # float32 samples

    tracemalloc.start()
    try:
        chunks = split_on_silence(bursts.path, tmp_path, max_bytes=1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(chunks) >= 2
    # The cut is looked for in at most 30 s of audio (~2 MB held, twice while cutting).
    assert peak < decoded_bytes / 3, f"peak {peak / 1e6:.1f} MB for {decoded_bytes / 1e6:.1f} MB"


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


def test_pieces_are_bounded_cut_in_pauses_and_cover_the_audio(tmp_path: Path) -> None:
    bursts = write_tone_bursts(tmp_path / "long.wav", 60)
    limit = 10 * SAMPLE_RATE

    pieces = list(pieces_on_silence(decode_mono(bursts.path), limit))

    assert len(pieces) >= 6
    assert all(len(piece.samples) <= limit for piece in pieces)
    assert [piece.start for piece in pieces[1:]] == [
        piece.start + len(piece.samples) for piece in pieces[:-1]
    ], "each piece starts where the one before ended"
    total = pieces[-1].start + len(pieces[-1].samples)
    assert total == sum(len(block) for block in decode_mono(bursts.path))
    cuts = [piece.offset for piece in pieces[1:]]
    assert all(bursts.in_gap(cut) for cut in cuts), (cuts, bursts.gaps)
