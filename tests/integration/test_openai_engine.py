"""The OpenAI engine over real HTTP, with the official client, against a local fake API."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from steno.common.jobs import Segment
from steno.transcriber.engines.openai import (
    MAX_PROMPT_CHARS,
    MAX_REQUEST_BYTES,
    OpenAIEngine,
    vocabulary_prompt,
)
from steno.transcriber.engines.port import EngineError, EngineUnavailable, TranscriptionOptions
from tests.support import AUDIO, free_port
from tests.tone_bursts import ToneBursts, write_tone_bursts

if TYPE_CHECKING:
    from tests.openai_server import FakeOpenAI

T = TypeVar("T")

KEY = "sk-test-0123456789abcdefSECRET"
SPEECH = AUDIO / "speech.wav"
SPEECH_SECONDS = 8.03


@pytest.fixture
async def engine(openai_server: FakeOpenAI) -> AsyncIterator[OpenAIEngine]:
    engine = OpenAIEngine(api_key=KEY, base_url=openai_server.base_url)
    yield engine
    await engine.close()


@pytest.fixture(scope="module")
def over_limit(tmp_path_factory: pytest.TempPathFactory) -> ToneBursts:
    """Fourteen minutes of 16 kHz 16-bit mono WAV: more than the API's 25 MB."""
    bursts = write_tone_bursts(tmp_path_factory.mktemp("long") / "long.wav", 14 * 60)
    assert bursts.path.stat().st_size > MAX_REQUEST_BYTES
    return bursts


async def until(condition: Callable[[], T | None], *, timeout: float = 10) -> T:
    """Waits, without blocking the event loop, until ``condition`` returns something."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := condition()):
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)
    return result


def assert_continuous(segments: list[Segment], duration: float) -> None:
    assert segments[0].start == pytest.approx(0.0, abs=1e-6)
    for before, after in itertools.pairwise(segments):
        assert after.start >= before.end - 1e-6, (before, after)
        assert after.end >= before.end
    assert all(s.end >= s.start for s in segments)
    assert segments[-1].end == pytest.approx(duration, abs=1.0)


async def test_transcribes_speech_with_segments(
    engine: OpenAIEngine, openai_server: FakeOpenAI
) -> None:
    openai_server.segment_seconds = 3.0
    progress: list[float] = []
    options = TranscriptionOptions(
        language="en-US", vocabulary=["Steno", "Kubernetes", "gRPC"], on_progress=progress.append
    )

    transcript = await engine.transcribe(SPEECH, options)

    assert transcript.text == "Part 1. Part 2. Part 3."
    assert [(s.start, s.text) for s in transcript.segments] == [
        (0.0, "Part 1."),
        (3.0, "Part 2."),
        (6.0, "Part 3."),
    ]
    assert transcript.segments[-1].end == pytest.approx(SPEECH_SECONDS, abs=0.01)
    assert transcript.language == "en"
    assert transcript.model == "whisper-1"
    assert transcript.duration_seconds == pytest.approx(SPEECH_SECONDS, abs=0.01)
    assert transcript.language_probability is None
    assert progress == [1.0]
    [request] = openai_server.requests
    assert request.path == "/v1/audio/transcriptions"
    assert request.authorization == f"Bearer {KEY}"
    assert request.field("model") == "whisper-1"
    assert request.field("response_format") == "verbose_json"
    assert request.fields["timestamp_granularities[]"] == ["segment"]
    assert request.field("language") == "en"
    prompt = request.field("prompt") or ""
    assert all(word in prompt for word in ("Steno", "Kubernetes", "gRPC"))
    # A file within the limit goes as it is.
    assert request.filename == "audio.wav"
    assert request.sha256 == hashlib.sha256(SPEECH.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("fixture", "upload_name"),
    [
        ("speech.mp3", "audio.mp3"),
        ("speech.ogg", "audio.ogg"),
        ("speech.m4a", "audio.m4a"),
        ("speech.webm", "audio.webm"),
        ("speech.flac", "audio.flac"),
    ],
)
async def test_the_upload_is_named_by_its_format_not_its_path(
    engine: OpenAIEngine, openai_server: FakeOpenAI, tmp_path: Path, fixture: str, upload_name: str
) -> None:
    # The worker keeps the audio under a name without an extension; the API needs one.
    audio = tmp_path / "audio"
    shutil.copyfile(AUDIO / fixture, audio)

    transcript = await engine.transcribe(audio, TranscriptionOptions())

    [request] = openai_server.requests
    assert request.filename == upload_name
    assert request.field("language") is None and request.field("prompt") is None
    assert transcript.duration_seconds == pytest.approx(SPEECH_SECONDS, abs=0.1)


def test_the_prompt_keeps_whole_phrases_within_the_limit() -> None:
    assert vocabulary_prompt([]) is None
    assert vocabulary_prompt(["Steno", " gRPC ", "Steno", ""]) == "Steno, gRPC"
    names = [f"Name{i:03d}" for i in range(200)]
    prompt = vocabulary_prompt(["x" * (MAX_PROMPT_CHARS + 1), *names]) or ""
    assert len(prompt) <= MAX_PROMPT_CHARS
    assert prompt.startswith("Name000, Name001") and all(p in names for p in prompt.split(", "))


@pytest.mark.parametrize(
    ("reported", "code"), [("english", "en"), ("Portuguese", "pt"), ("pt", "pt"), ("xx", "")]
)
async def test_the_reported_language_becomes_a_code(
    engine: OpenAIEngine, openai_server: FakeOpenAI, reported: str, code: str
) -> None:
    openai_server.language = reported

    transcript = await engine.transcribe(SPEECH, TranscriptionOptions())

    assert transcript.language == code


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "1500", "retry-after": "2"}, 1.5),
        ({}, None),
    ],
)
async def test_a_rate_limit_is_temporary_then_the_next_attempt_succeeds(
    engine: OpenAIEngine,
    openai_server: FakeOpenAI,
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    openai_server.fail(
        429,
        "Rate limit reached for requests",
        type="requests",
        code="rate_limit_exceeded",
        headers=headers,
    )

    with pytest.raises(EngineUnavailable, match="rate limit") as raised:
        await engine.transcribe(SPEECH, TranscriptionOptions())
    transcript = await engine.transcribe(SPEECH, TranscriptionOptions())

    if retry_after is None:
        assert raised.value.retry_after is None
    else:
        assert raised.value.retry_after == pytest.approx(retry_after, abs=2)
    assert transcript.text
    assert len(openai_server.requests) == 2  # no retry inside the client


async def test_a_rate_limit_may_say_when_to_come_back_as_a_date(
    engine: OpenAIEngine, openai_server: FakeOpenAI
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    openai_server.fail(429, "Slow down", type="requests", headers={"retry-after": when})

    with pytest.raises(EngineUnavailable) as raised:
        await engine.transcribe(SPEECH, TranscriptionOptions())

    assert raised.value.retry_after == pytest.approx(60, abs=5)


async def test_an_account_out_of_quota_fails_after_one_request(
    engine: OpenAIEngine, openai_server: FakeOpenAI
) -> None:
    openai_server.fail(
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        type="insufficient_quota",
        code="insufficient_quota",
        headers={"retry-after": "20"},
    )

    with pytest.raises(EngineError) as raised:
        await engine.transcribe(SPEECH, TranscriptionOptions())

    assert raised.value.code == "RESOURCE_EXHAUSTED"
    assert "quota" in str(raised.value) and "billing" in str(raised.value)
    assert len(openai_server.requests) == 1


async def test_a_rejected_key_fails_without_showing_the_key(
    engine: OpenAIEngine, openai_server: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # OpenAI echoes the start and end of a rejected key.
    echoed = f"{KEY[:8]}{'*' * 16}{KEY[-4:]}"
    openai_server.fail(
        401,
        f"Incorrect API key provided: {echoed}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        type="invalid_request_error",
        code="invalid_api_key",
    )

    with pytest.raises(EngineError) as raised:
        await engine.transcribe(SPEECH, TranscriptionOptions())

    message = str(raised.value)
    assert raised.value.code == "UNAUTHENTICATED"
    assert "rejected the API key" in message and "OPENAI_API_KEY" in message
    assert KEY not in message and echoed not in message and "sk-" not in message
    assert raised.value.__cause__ is None
    assert KEY not in caplog.text and echoed not in caplog.text
    assert len(openai_server.requests) == 1


async def test_a_refused_project_is_permission_denied(
    engine: OpenAIEngine, openai_server: FakeOpenAI
) -> None:
    openai_server.fail(
        403, "Project does not have access to model whisper-1", type="invalid_request_error"
    )

    with pytest.raises(EngineError, match="refused access") as raised:
        await engine.transcribe(SPEECH, TranscriptionOptions())

    assert raised.value.code == "PERMISSION_DENIED"
    assert "does not have access" in str(raised.value)


async def test_an_unknown_model_is_a_failed_precondition_naming_it(
    openai_server: FakeOpenAI,
) -> None:
    openai_server.fail(404, "The model `whisper-9` does not exist", type="invalid_request_error")
    engine = OpenAIEngine(api_key=KEY, base_url=openai_server.base_url, model="whisper-9")

    with pytest.raises(EngineError) as raised:
        await engine.transcribe(SPEECH, TranscriptionOptions())
    await engine.close()

    assert raised.value.code == "FAILED_PRECONDITION"
    assert "'whisper-9'" in str(raised.value)
    assert openai_server.requests[0].field("model") == "whisper-9"


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [(500, {}, None), (502, {}, None), (503, {"retry-after": "30"}, 30.0)],
)
async def test_a_server_error_is_temporary(
    engine: OpenAIEngine,
    openai_server: FakeOpenAI,
    status: int,
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    openai_server.fail(status, "The server had an error", type="server_error", headers=headers)

    with pytest.raises(EngineUnavailable, match=f"HTTP {status}") as raised:
        await engine.transcribe(SPEECH, TranscriptionOptions())

    assert raised.value.retry_after == retry_after
    assert len(openai_server.requests) == 1


async def test_an_unreachable_server_is_temporary() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    engine = OpenAIEngine(api_key=KEY, base_url=url)

    with pytest.raises(EngineUnavailable, match="could not reach") as raised:
        await engine.transcribe(SPEECH, TranscriptionOptions())
    await engine.close()

    assert url in str(raised.value)


async def test_a_server_that_does_not_answer_in_time_is_temporary(
    openai_server: FakeOpenAI,
) -> None:
    openai_server.reply(200, {}, stall=True)
    engine = OpenAIEngine(api_key=KEY, base_url=openai_server.base_url, timeout=0.5)

    with pytest.raises(EngineUnavailable, match="did not answer in time"):
        await engine.transcribe(SPEECH, TranscriptionOptions())
    await engine.close()


@pytest.mark.parametrize("status", [400, 413, 415, 422])
async def test_audio_the_api_cannot_use_is_invalid(
    engine: OpenAIEngine, openai_server: FakeOpenAI, status: int
) -> None:
    openai_server.fail(
        status,
        "The audio file could not be decoded or its format is not supported.",
        type="invalid_request_error",
    )

    with pytest.raises(EngineError, match="could not be decoded") as raised:
        await engine.transcribe(SPEECH, TranscriptionOptions())

    assert raised.value.code == "INVALID_ARGUMENT"


async def test_a_rejected_parameter_is_named(
    engine: OpenAIEngine, openai_server: FakeOpenAI
) -> None:
    openai_server.reply(
        400,
        {
            "error": {
                "message": "Invalid language 'xx'. Language parameter must be in ISO-639-1 format.",
                "type": "invalid_request_error",
                "param": "language",
                "code": "invalid_language_format",
            }
        },
    )

    with pytest.raises(EngineError, match="rejected the language") as raised:
        await engine.transcribe(SPEECH, TranscriptionOptions(language="xx"))

    assert raised.value.code == "INVALID_ARGUMENT"


async def test_a_file_that_is_not_audio_is_invalid_without_a_request(
    engine: OpenAIEngine, openai_server: FakeOpenAI, tmp_path: Path
) -> None:
    audio = tmp_path / "audio"
    audio.write_bytes(b"definitely not audio\n" * 1000)

    with pytest.raises(EngineError, match="could not be decoded") as raised:
        await engine.transcribe(audio, TranscriptionOptions())

    assert raised.value.code == "INVALID_ARGUMENT"
    assert openai_server.requests == []


async def test_without_a_key_openai_itself_is_never_called(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    engine = OpenAIEngine()

    with pytest.raises(EngineError, match="OPENAI_API_KEY") as raised:
        await engine.transcribe(SPEECH, TranscriptionOptions())

    assert raised.value.code == "UNAUTHENTICATED"


async def test_the_environment_configures_the_client(
    openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    engine = OpenAIEngine()

    await engine.transcribe(SPEECH, TranscriptionOptions())
    await engine.close()

    assert openai_server.requests[0].authorization == "Bearer sk-from-the-environment"


async def test_a_compatible_server_needs_no_key(
    openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    engine = OpenAIEngine(base_url=openai_server.base_url)

    transcript = await engine.transcribe(SPEECH, TranscriptionOptions())
    await engine.close()

    assert transcript.text


async def test_a_server_without_segments_gives_one_segment(
    engine: OpenAIEngine, openai_server: FakeOpenAI
) -> None:
    openai_server.reply(200, {"text": " Good morning. "})

    transcript = await engine.transcribe(SPEECH, TranscriptionOptions(language="en"))

    assert transcript.text == "Good morning."
    assert transcript.language == "en"
    [segment] = transcript.segments
    assert (segment.start, segment.text) == (0.0, "Good morning.")
    assert segment.end == pytest.approx(SPEECH_SECONDS, abs=0.01)


@pytest.mark.parametrize("body", ["Good morning.", {"segments": []}])
async def test_an_answer_that_is_not_verbose_json_is_a_failed_precondition(
    engine: OpenAIEngine, openai_server: FakeOpenAI, body: dict[str, object] | str
) -> None:
    openai_server.reply(200, body)

    with pytest.raises(EngineError, match="verbose_json") as raised:
        await engine.transcribe(SPEECH, TranscriptionOptions())

    assert raised.value.code == "FAILED_PRECONDITION"


async def test_the_fake_api_refuses_over_25_mb_like_the_real_one(
    openai_server: FakeOpenAI, over_limit: ToneBursts
) -> None:
    # An engine told the limit is higher sends the file as it is, and the API refuses it.
    engine = OpenAIEngine(
        api_key=KEY, base_url=openai_server.base_url, max_request_bytes=2 * MAX_REQUEST_BYTES
    )

    with pytest.raises(EngineError, match="HTTP 413") as raised:
        await engine.transcribe(over_limit.path, TranscriptionOptions())
    await engine.close()

    assert raised.value.code == "INVALID_ARGUMENT"
    [request] = openai_server.requests
    assert request.size > MAX_REQUEST_BYTES


async def test_audio_over_25_mb_is_transcoded_under_the_limit(
    engine: OpenAIEngine, openai_server: FakeOpenAI, over_limit: ToneBursts
) -> None:
    openai_server.segment_seconds = 30.0
    progress: list[float] = []

    transcript = await engine.transcribe(
        over_limit.path, TranscriptionOptions(on_progress=progress.append)
    )

    # Fourteen minutes of 24 kbit/s Opus is about 2.6 MB: one request, far under the limit.
    [request] = openai_server.requests
    assert request.size <= MAX_REQUEST_BYTES
    assert request.filename == "chunk-0000.ogg"
    assert transcript.duration_seconds == pytest.approx(over_limit.duration, abs=0.05)
    assert_continuous(transcript.segments, over_limit.duration)
    assert progress[-1] == 1.0


async def test_long_audio_is_split_in_its_pauses_and_stitched_back(
    openai_server: FakeOpenAI, over_limit: ToneBursts
) -> None:
    # The same recording with a 1 MB limit: three chunks instead of one.
    limit = 1024 * 1024
    engine = OpenAIEngine(api_key=KEY, base_url=openai_server.base_url, max_request_bytes=limit)
    openai_server.segment_seconds = 30.0
    progress: list[float] = []

    transcript = await engine.transcribe(
        over_limit.path, TranscriptionOptions(language="en", on_progress=progress.append)
    )
    await engine.close()

    requests = openai_server.requests
    assert len(requests) >= 3
    assert all(r.size <= limit for r in requests)
    assert all(r.field("language") == "en" for r in requests)
    chunk_seconds = [r.audio_seconds or 0.0 for r in requests]
    boundaries = list(itertools.accumulate(chunk_seconds))[:-1]
    assert all(over_limit.in_gap(t) for t in boundaries), boundaries
    assert_continuous(transcript.segments, over_limit.duration)
    # Each chunk's segments start where the chunk does.
    starts = {round(s.start, 3) for s in transcript.segments}
    assert all(round(t, 3) in starts for t in boundaries)
    assert transcript.text == " ".join(
        " ".join(f"Part {i + 1}." for i in range(int(-(-seconds // 30))))
        for seconds in chunk_seconds
    )
    assert progress == sorted(progress) and len(progress) == len(requests)
    assert progress[-1] == 1.0
    assert (transcript.language, transcript.model) == ("en", "whisper-1")
    assert transcript.duration_seconds == pytest.approx(over_limit.duration, abs=0.05)


async def test_cancelling_while_splitting_stops_and_cleans_up(
    openai_server: FakeOpenAI,
    over_limit: ToneBursts,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    engine = OpenAIEngine(api_key=KEY, base_url=openai_server.base_url, max_request_bytes=1 << 20)
    task = asyncio.create_task(engine.transcribe(over_limit.path, TranscriptionOptions()))

    await until(lambda: next(tmp_path.glob("steno-openai-*/chunk-*"), None))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await engine.close()

    assert not temporary_files(tmp_path)
    assert openai_server.requests == []


def temporary_files(directory: Path) -> list[Path]:
    return list(directory.iterdir())
