"""The transcriber's consumer and pipeline on RabbitMQ, Postgres, S3 and the real model."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import av
import jiwer
import numpy as np
import pytest

from steno.common.broker import RetryLater, TranscriptionRequest
from steno.common.jobs import JobState, Transcript
from steno.common.lexicons import LexiconEntry
from steno.transcriber.engines.local import LocalWhisperEngine, Stopped
from steno.transcriber.engines.models import resolve_model
from steno.transcriber.engines.port import EngineError, TranscriptionOptions
from steno.transcriber.pipeline import JobProcessor
from steno.v1 import transcription_service_pb2 as pb
from tests.fakes import make_lexicon
from tests.integration.conftest import Gateway
from tests.integration.test_upload_api import chunks_of, queued_messages, upload
from tests.support import AUDIO, SPEECH_TEXT, FailsOnce, consume_until_success, normalise


class CountingEngine:
    """The real local engine, counting how often it is asked to transcribe."""

    name = "local"

    def __init__(self, engine: LocalWhisperEngine) -> None:
        self._engine = engine
        self.calls = 0

    async def transcribe(self, audio: Path, options: TranscriptionOptions) -> Transcript:
        self.calls += 1
        return await self._engine.transcribe(audio, options)


class Worker:
    """A consumer task whose handled requests can be awaited."""

    def __init__(self, gateway: Gateway, engine: CountingEngine) -> None:
        self._processor = JobProcessor(
            gateway.jobs, gateway.lexicons, gateway.store, {"local": engine}
        )
        self.handled: list[TranscriptionRequest] = []
        self._changed = asyncio.Condition()
        self._consumer = asyncio.create_task(gateway.queue.consume(self.handle))

    async def stop(self) -> None:
        """Stops consuming; a delivery not acknowledged by now goes back to the queue."""
        self._consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._consumer

    async def handle(self, request: TranscriptionRequest) -> None:
        await self._processor.handle(request)
        async with self._changed:
            self.handled.append(request)
            self._changed.notify_all()

    async def wait_handled(self, count: int, timeout: float = 120) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.handled) >= count)


@pytest.fixture
async def worker(
    gateway: Gateway, whisper_engine: LocalWhisperEngine
) -> AsyncIterator[tuple[Worker, CountingEngine]]:
    engine = CountingEngine(whisper_engine)
    worker = Worker(gateway, engine)
    yield worker, engine
    await worker.stop()


async def test_duplicate_request_for_a_completed_job_is_not_transcribed_again(
    gateway: Gateway, worker: tuple[Worker, CountingEngine]
) -> None:
    consumer, engine = worker
    response = await upload(
        gateway,
        [pb.UploadAudioRequest(metadata=pb.UploadMetadata(filename="speech.ogg")),
         *chunks_of((AUDIO / "speech.ogg").read_bytes())],
    )  # fmt: skip
    job_id = uuid.UUID(response.job.job_id)
    await consumer.wait_handled(1)
    completed = await gateway.jobs.get(job_id)
    assert completed is not None and completed.state is JobState.COMPLETED
    assert "good morning" in completed.original_text.lower()

    await gateway.queue.publish(TranscriptionRequest(job_id, completed.tenant))
    await consumer.wait_handled(2)

    assert engine.calls == 1
    after = await gateway.jobs.get(job_id)
    assert after == completed, "the duplicate changed the job"
    await consumer.stop()
    assert await queued_messages(gateway.settings) == 0, "both deliveries were acknowledged"


async def test_undecodable_audio_fails_the_job_with_a_clear_reason(
    gateway: Gateway, worker: tuple[Worker, CountingEngine]
) -> None:
    """A file that looks like WAV but is not audio: FAILED, the worker goes on."""
    garbage = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 40
    response = await upload(
        gateway,
        [pb.UploadAudioRequest(metadata=pb.UploadMetadata(filename="bad.wav")),
         *chunks_of(garbage)],
    )  # fmt: skip
    consumer, _ = worker
    await consumer.wait_handled(1)
    job = await gateway.jobs.get(uuid.UUID(response.job.job_id))
    assert job is not None and job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "INVALID_ARGUMENT"
    assert "could not be decoded" in job.error.message
    assert job.audio_expire_time is not None, "retention runs for failed jobs too"


@pytest.mark.parametrize(("language", "expected"), [("en", "en"), ("en-GB", "en"), ("EN", "en")])
async def test_the_local_engine_takes_bcp47_tags(
    whisper_engine: LocalWhisperEngine, language: str, expected: str
) -> None:
    transcript = await whisper_engine.transcribe(
        AUDIO / "speech.flac", TranscriptionOptions(language=language)
    )
    assert transcript.language == expected
    assert "good morning" in transcript.text.lower()


async def test_an_english_only_model_refuses_other_languages(
    whisper_engine: LocalWhisperEngine,
) -> None:
    with pytest.raises(EngineError, match="English only") as caught:
        await whisper_engine.transcribe(
            AUDIO / "speech.flac", TranscriptionOptions(language="pt-BR")
        )
    assert caught.value.code == "FAILED_PRECONDITION"


async def test_a_failed_handler_gets_the_message_again_from_rabbitmq(gateway: Gateway) -> None:
    request = TranscriptionRequest(uuid.uuid4(), "default")
    handler = FailsOnce()

    await gateway.queue.publish(request)
    await consume_until_success(gateway.queue, handler, timeout=30)

    assert handler.calls == [request, request]
    assert await queued_messages(gateway.settings) == 0


@pytest.fixture(params=["sequential", "batched"])
def engine_in_each_mode(
    request: pytest.FixtureRequest, whisper_engine: LocalWhisperEngine, tmp_path: Path
) -> LocalWhisperEngine:
    """The bundled model decoding window by window, and in batches whatever the length."""
    if request.param == "sequential":
        return whisper_engine
    return LocalWhisperEngine(resolve_model(None, tmp_path), batch_min_seconds=1, batch_size=4)


async def test_an_abandoned_transcription_stops_before_the_models_next_call(
    engine_in_each_mode: LocalWhisperEngine,
) -> None:
    """What a cancelled caller leaves behind: the engine's thread gives up before its next
    call into the model (here the first window's encoding) instead of decoding on to the
    next segment, a whole batch of windows in batched mode."""
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped, match="stopped before the model's next encode"):
        await asyncio.to_thread(
            engine_in_each_mode._transcribe, AUDIO / "speech.wav", TranscriptionOptions(), stop
        )


async def test_a_request_to_retry_later_comes_back_through_a_rabbitmq_delay_queue(
    gateway: Gateway,
) -> None:
    """The delayed requeue: the message waits out its delay in a TTL queue, not in the
    worker, then RabbitMQ dead-letters it back to the main queue."""
    request = TranscriptionRequest(uuid.uuid4(), "default")
    handler = FailsOnce(RetryLater(1, "rate limited"))

    await gateway.queue.publish(request)
    await consume_until_success(gateway.queue, handler, timeout=30)

    assert handler.calls == [request, request]
    assert handler.times[1] - handler.times[0] >= 1.0
    assert await queued_messages(gateway.settings) == 0
    assert await queued_messages(gateway.settings, f"{gateway.settings.broker.queue}.retry.1s") == 0


async def test_the_local_engine_reports_progress_through_the_file(
    whisper_engine: LocalWhisperEngine,
) -> None:
    reported: list[float] = []
    await whisper_engine.transcribe(
        AUDIO / "speech.wav", TranscriptionOptions(on_progress=reported.append)
    )
    assert len(reported) >= 2
    assert reported == sorted(reported)
    assert 0 < reported[0] < 1 and reported[-1] == 1.0


async def test_long_audio_goes_through_batched_inference(tmp_path: Path) -> None:
    """The batched pipeline (used from STENO_WHISPER_BATCH_MIN_SECONDS on) hears the same
    words; here every file counts as long."""
    engine = LocalWhisperEngine(resolve_model(None, tmp_path), batch_min_seconds=1, batch_size=4)
    transcript = await engine.transcribe(AUDIO / "speech.ogg", TranscriptionOptions())
    error_rate = jiwer.wer(normalise(SPEECH_TEXT), normalise(transcript.text))
    print(f"batched WER {error_rate:.3f}: {transcript.text!r}")
    assert error_rate <= 0.3
    assert transcript.language == "en" and transcript.duration_seconds > 7


async def test_a_job_uses_and_records_the_lexicon_version_current_when_it_runs(
    gateway: Gateway, whisper_engine: LocalWhisperEngine
) -> None:
    """Queued with version 1 of a lexicon, which is updated before a worker gets the job:
    the job is processed with version 2, and says so."""
    lexicon = make_lexicon(LexiconEntry("Dawn", ("good morning",)))
    await gateway.lexicons.add(lexicon)
    metadata = pb.UploadMetadata(filename="speech.wav", lexicon_id=str(lexicon.lexicon_id))
    audio = (AUDIO / "speech.wav").read_bytes()
    response = await upload(gateway, [pb.UploadAudioRequest(metadata=metadata), *chunks_of(audio)])
    assert response.job.lexicon_version == 0, "the version is fixed when the job runs"

    lexicon.entries.append(LexiconEntry("Crew", ("the team",)))
    lexicon.version = 2
    assert await gateway.lexicons.update(lexicon, expected_version=1)
    consumer = Worker(gateway, CountingEngine(whisper_engine))
    try:
        await consumer.wait_handled(1)
    finally:
        await consumer.stop()

    job = await gateway.jobs.get(uuid.UUID(response.job.job_id))
    assert job is not None and job.state is JobState.COMPLETED
    assert job.lexicon_version == 2
    assert "Crew" in job.processed_text, "an entry only version 2 has was applied"
    assert "Dawn" in job.processed_text


async def test_a_file_without_an_audio_stream_is_refused_as_invalid(
    whisper_engine: LocalWhisperEngine, tmp_path: Path
) -> None:
    """A video-only MP4 passes the gateway's sniffing (it is an MP4) but has nothing to hear."""
    silent_film = tmp_path / "film.mp4"
    with av.open(str(silent_film), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height = 32, 32
        for _ in range(4):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))

    with pytest.raises(EngineError, match="no audio stream") as caught:
        await whisper_engine.transcribe(silent_film, TranscriptionOptions())
    assert caught.value.code == "INVALID_ARGUMENT"


async def test_long_audio_is_transcribed_a_piece_at_a_time(tmp_path: Path) -> None:
    """Past STENO_WHISPER_CHUNK_SECONDS the recording is decoded as a stream and transcribed
    in pieces cut in its pauses; the segments come back on the recording's own clock."""
    engine = LocalWhisperEngine(resolve_model(None, tmp_path), piece_seconds=4)
    reported: list[float] = []
    transcript = await engine.transcribe(
        AUDIO / "speech.wav", TranscriptionOptions(on_progress=reported.append)
    )

    error_rate = jiwer.wer(normalise(SPEECH_TEXT), normalise(transcript.text))
    print(f"in pieces WER {error_rate:.3f}: {transcript.text!r}")
    assert error_rate <= 0.3
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts) and transcript.segments[-1].end > 5, "offsets were added"
    assert transcript.duration_seconds == pytest.approx(8.03, abs=0.1)
    assert reported == sorted(reported) and reported[-1] == 1.0
