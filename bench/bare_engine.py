"""The pipeline's baseline: faster-whisper itself, with the model and settings Steno's local
engine uses by default, transcribing files one after another in one process.
``python -m bench.bare_engine FILE…`` prints the audio seconds, the seconds it took (the
model loaded beforehand) and each file's text, as JSON."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from faster_whisper import WhisperModel

from steno.transcriber.engines.local import COMPRESSION_RATIO_THRESHOLD
from steno.transcriber.engines.models import resolve_model
from steno.transcriber.settings import WhisperSettings


def main() -> None:
    files = sys.argv[1:]
    settings = WhisperSettings()
    model = resolve_model(settings.model, Path(tempfile.gettempdir()) / "steno-bench-models")
    whisper = WhisperModel(model.location, device="auto", compute_type=settings.compute_type,
                           cpu_threads=settings.cpu_threads)  # fmt: skip
    audio_seconds, texts = 0.0, []
    start = time.perf_counter()
    for path in files:
        segments, info = whisper.transcribe(
            path, beam_size=settings.beam_size, vad_filter=settings.vad_filter,
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
        )  # fmt: skip
        texts.append(" ".join(s.text.strip() for s in segments))
        audio_seconds += info.duration
    elapsed = time.perf_counter() - start
    print(json.dumps({"audio_seconds": audio_seconds, "seconds": elapsed, "texts": texts}))


if __name__ == "__main__":
    main()
