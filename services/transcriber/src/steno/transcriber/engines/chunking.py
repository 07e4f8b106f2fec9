"""Cutting long audio in its pauses: into compact chunks that each fit an upload limit, or
into pieces of samples a local model transcribes one at a time.

A transcription API with an upload limit (OpenAI's is 25 MB) cannot take a long recording in
one request. The audio is decoded once, as a stream, to 16 kHz mono (all that a speech model
listens to) and encoded as Opus in Ogg, about 3 KB a second, so a chunk holds hours of speech.
Each chunk ends at the quietest moment near the end of what it may hold, so that no word is
cut in two.

Memory stays bounded whatever the length of the audio: samples go straight to the current
chunk's encoder until the stretch where its cut is looked for, and only that stretch (at most
:data:`MAX_SEARCH_SECONDS`) is held while the cut is chosen. Chunks are files on disk. Pieces
(:func:`pieces_on_silence`) are held in memory one at a time, so their length is the bound.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE = 16_000
# Opus at 24 kbit/s, constant bit rate: clear wideband speech, and a size known in advance.
BIT_RATE = 24_000
SUFFIX = ".ogg"
CONTENT_TYPE = "audio/ogg"
# Ogg pages add about 3 % to the Opus packets, and the stream headers a few hundred bytes.
_CONTAINER_OVERHEAD = 1.05
_HEADER_BYTES = 4096

# Where a cut is looked for: the last quarter of what a chunk may hold, and at most this much.
# Speech pauses every few seconds, so half a minute always holds a pause to cut in.
SEARCH_FRACTION = 0.25
MAX_SEARCH_SECONDS = 30.0
# Loudness is measured as the RMS of 20 ms windows, averaged over 200 ms: a cut goes in a
# pause at least that long when there is one, not in the gap between two syllables.
WINDOW_SECONDS = 0.02
PAUSE_SECONDS = 0.2
# Windows within this factor of the quietest one's power (3 dB) count as the same silence.
_QUIET_FACTOR = 2.0
# Servers refuse audio shorter than 0.1 s; a shorter last chunk is padded with silence.
MIN_CHUNK_SECONDS = 0.5
# The longest chunk, whatever the byte limit allows (about 2.3 hours at BIT_RATE): a request
# for more audio than this risks the client's timeout, and a retry redoes all of it.
MAX_CHUNK_SECONDS = 20 * 60.0

Samples = NDArray[np.float32]


class UndecodableAudio(Exception):
    """The file is not audio that FFmpeg can decode."""


class Stopped(Exception):
    """The caller asked the split to stop before it finished."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of the audio: a file, and where it lies in the original, in seconds."""

    path: Path
    start: float
    duration: float

    @property
    def end(self) -> float:
        return self.start + self.duration


def max_chunk_seconds(max_bytes: int) -> float:
    """The longest chunk whose encoded file stays within ``max_bytes``, and at most
    MAX_CHUNK_SECONDS."""
    seconds = (max_bytes - _HEADER_BYTES) / (BIT_RATE / 8 * _CONTAINER_OVERHEAD)
    if seconds < 4 * MIN_CHUNK_SECONDS:
        raise ValueError(f"{max_bytes} bytes hold too little audio to split into ({seconds:.1f} s)")
    return min(seconds, MAX_CHUNK_SECONDS)


def quietest_point(samples: Samples, rate: int = SAMPLE_RATE) -> int:
    """The index of the sample to cut ``samples`` at: the middle of its longest quietest stretch.

    Among all the stretches as quiet as the quietest pause, the longest wins (a real pause
    rather than a short dip), and of equally long ones the latest (fewer, longer chunks).
    """
    window = max(1, round(rate * WINDOW_SECONDS))
    count = len(samples) // window
    if count == 0:
        return len(samples)
    # A view, not a copy: the stretch searched may be half a minute of audio.
    frames = samples[: count * window].reshape(count, window)
    power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / window
    span = max(1, min(count, round(PAUSE_SECONDS / WINDOW_SECONDS)))
    # smoothed[i] is the mean power of windows i .. i + span - 1.
    smoothed = np.convolve(power, np.ones(span) / span, mode="valid")
    quiet = smoothed <= smoothed.min() * _QUIET_FACTOR + 1e-12
    edges = np.diff(np.concatenate(([0], quiet.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    lengths = np.flatnonzero(edges == -1) - starts
    best = len(lengths) - 1 - int(np.argmax(lengths[::-1]))
    # The centre of the run, in windows: positions a .. a + n - 1, each span windows wide.
    centre = int(starts[best]) + (int(lengths[best]) - 1) / 2 + span / 2
    return min(len(samples), round(centre * window))


def decode_mono(source: Path, stop: threading.Event | None = None) -> Iterator[Samples]:
    """The audio of ``source`` as blocks of 16 kHz mono float samples, decoded as it goes.

    Raises UndecodableAudio if FFmpeg cannot open or decode it, Stopped if ``stop`` is set.
    """
    try:
        with av.open(str(source)) as container:
            if not container.streams.audio:
                raise UndecodableAudio("the file has no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(container.streams.audio[0]):
                if stop is not None and stop.is_set():
                    raise Stopped(f"splitting {source.name} stopped")
                for resampled in resampler.resample(frame):
                    yield resampled.to_ndarray()[0]
            for resampled in resampler.resample(None):
                yield resampled.to_ndarray()[0]
    except av.error.FFmpegError as exc:
        raise UndecodableAudio(ffmpeg_reason(exc)) from exc


def ffmpeg_reason(exc: av.error.FFmpegError) -> str:
    """FFmpeg's reason for an error, without the file's path (a worker's temporary file)."""
    return str(exc.strerror or exc).lower()


def split_on_silence(
    source: Path, directory: Path, *, max_bytes: int, stop: threading.Event | None = None
) -> list[Chunk]:
    """Splits ``source`` into Opus files in ``directory``, each at most ``max_bytes``, cut in
    pauses; the chunks in order. Audio that decodes to nothing gives no chunks.

    Blocking: run it in a thread. Raises UndecodableAudio, or Stopped if ``stop`` is set.
    """
    limit = int(max_chunk_seconds(max_bytes) * SAMPLE_RATE)
    search = int(min(limit * SEARCH_FRACTION, MAX_SEARCH_SECONDS * SAMPLE_RATE))
    direct = limit - search  # samples that go into every chunk before its cut is looked for
    chunks: list[Chunk] = []
    writer = _ChunkWriter(directory, index=0, start=0)
    # Samples past the direct part of the current chunk, not yet written anywhere.
    pending: list[Samples] = []
    pending_len = 0
    try:
        for block in decode_mono(source, stop):
            if not pending and writer.samples < direct:
                head = block[: direct - writer.samples]
                writer.write(head)
                block = block[len(head) :]
            if len(block):
                pending.append(block)
                pending_len += len(block)
            while writer.samples + pending_len > limit:
                held = np.concatenate(pending)
                cut = quietest_point(held[: limit - writer.samples])
                writer.write(held[:cut])
                start = writer.start + writer.samples
                chunks.append(writer.close())
                writer = _ChunkWriter(directory, index=len(chunks), start=start)
                rest = held[cut:]
                writer.write(rest[:direct])
                rest = rest[direct:]
                pending = [rest] if len(rest) else []
                pending_len = len(rest)
        if pending:
            writer.write(np.concatenate(pending))
        if writer.samples:
            chunks.append(writer.close())
    except BaseException:
        writer.abort()
        raise
    return chunks


def pieces_on_silence(blocks: Iterable[Samples], max_samples: int) -> Iterator[Piece]:
    """Regroups a stream of sample blocks into pieces of at most ``max_samples``, each but the
    last cut at the quietest point of its final stretch; at most one piece (and the block
    being read) is held at a time."""
    search = int(min(max_samples * SEARCH_FRACTION, MAX_SEARCH_SECONDS * SAMPLE_RATE))
    held: list[Samples] = []
    held_len = 0
    start = 0
    for block in blocks:
        held.append(block)
        held_len += len(block)
        while held_len > max_samples:
            samples = np.concatenate(held)
            stretch = max_samples - search
            cut = stretch + quietest_point(samples[stretch:max_samples])
            yield Piece(start, samples[:cut])
            start += cut
            rest = samples[cut:]
            held, held_len = ([rest] if len(rest) else []), len(rest)
    if held_len:
        yield Piece(start, np.concatenate(held))


@dataclass(frozen=True, slots=True)
class Piece:
    """Samples of the audio, from ``start`` samples into it."""

    start: int
    samples: Samples

    @property
    def offset(self) -> float:
        """Where the piece starts, in seconds."""
        return self.start / SAMPLE_RATE


class _ChunkWriter:
    """Encodes samples into one chunk file, opened on the first write."""

    def __init__(self, directory: Path, *, index: int, start: int) -> None:
        self.path = directory / f"chunk-{index:04d}{SUFFIX}"
        self.start = start  # in samples from the start of the source
        self.samples = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.AudioStream | None = None

    def write(self, samples: Samples) -> None:
        if not len(samples):
            return
        if self._container is None or self._stream is None:
            self._container = av.open(str(self.path), "w", format="ogg")
            self._stream = self._container.add_stream(
                "libopus", rate=SAMPLE_RATE, options={"vbr": "off"}
            )
            self._stream.layout = "mono"
            self._stream.bit_rate = BIT_RATE
        self._encode(samples, pts=self.samples)
        self.samples += len(samples)

    def close(self) -> Chunk:
        assert self._container is not None and self._stream is not None, "empty chunk"
        padding = round(MIN_CHUNK_SECONDS * SAMPLE_RATE) - self.samples
        if padding > 0:
            self._encode(np.zeros(padding, dtype=np.float32), pts=self.samples)
        self._container.mux(self._stream.encode(None))
        self._container.close()
        return Chunk(self.path, self.start / SAMPLE_RATE, self.samples / SAMPLE_RATE)

    def abort(self) -> None:
        """Closes the file after a failure; what it holds is of no use."""
        if self._container is not None:
            with contextlib.suppress(av.error.FFmpegError, OSError):
                self._container.close()
            self._container = None

    def _encode(self, samples: Samples, *, pts: int) -> None:
        assert self._container is not None and self._stream is not None
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples).reshape(1, -1), format="flt", layout="mono"
        )
        frame.rate = SAMPLE_RATE
        frame.pts = pts
        self._container.mux(self._stream.encode(frame))
