"""The OpenAI-compatible HTTP API of an in-process gateway (real Postgres, RabbitMQ and S3)
with a worker on the bundled model, driven by the official ``openai`` client: every answer
format, a lexicon through ``extra_body``, the job behind the answer over gRPC, and the
refusals in OpenAI's shape."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
import httpx
import jiwer
import openai
import pytest
import trustme
from prometheus_client import REGISTRY
from pydantic import SecretStr

from steno.cli.dev import DevSettings
from steno.common.adapters import open_adapters
from steno.common.jobs import Job, JobRepository, JobState
from steno.common.settings import QuotaSettings
from steno.gateway.service import Gateway, build_gateway
from steno.gateway.settings import AccessSettings, TlsSettings, UploadSettings
from steno.transcriber.engines.local import LocalWhisperEngine
from steno.transcriber.service import build_processor, consumers
from steno.v1 import job_pb2, lexicon_pb2, lexicon_pb2_grpc, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb
from tests.multipart_form import CONTENT_TYPE, END, part_head
from tests.multipart_form import field as form_field
from tests.support import AUDIO, SPEECH_TEXT, normalise

T = TypeVar("T")
KEY = "k" * 40
OTHER_KEY = "o" * 40
MAX_UPLOAD = 1024 * 1024


@dataclass
class Steno:
    http: str
    grpc: str

    def client(self, key: str = KEY) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.http}/v1", api_key=key, max_retries=0)

    @property
    def metadata(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {KEY}"),)


@pytest.fixture
async def steno(settings: DevSettings, whisper_engine: LocalWhisperEngine) -> AsyncIterator[Steno]:
    """Gateway (gRPC and HTTP) and a worker in this process, with key KEY for tenant acme
    and uploads of at most MAX_UPLOAD bytes."""
    settings = settings.model_copy(
        update={
            "access": AccessSettings(auth="enabled", api_keys=SecretStr(f"acme:user:{KEY}")),
            "uploads": UploadSettings(max_upload_bytes=MAX_UPLOAD),
        }
    )
    async with open_adapters(settings) as adapters:
        gateway = build_gateway(settings, adapters)
        grpc_port = await gateway.start("127.0.0.1", 0)
        http_port = await gateway.http.start("127.0.0.1", 0)
        processor = build_processor(settings, adapters, {"local": whisper_engine})
        worker = asyncio.gather(*consumers(processor, adapters.queue))
        try:
            yield Steno(f"http://127.0.0.1:{http_port}", f"127.0.0.1:{grpc_port}")
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            await gateway.stop(0)


async def eventually(condition: Callable[[], Awaitable[T | None]]) -> T:
    """``condition``'s first answer that is not None, asked every 50 ms for up to 30 s."""
    async with asyncio.timeout(30):
        while (answer := await condition()) is None:
            await asyncio.sleep(0.05)
    return answer


def speech() -> Path:
    return AUDIO / "speech.wav"


def assert_heard(text: str) -> None:
    error_rate = jiwer.wer(normalise(SPEECH_TEXT), normalise(text))
    assert error_rate <= 0.3, text


async def test_json_answer_is_the_transcript_and_the_job_is_visible_over_grpc(
    steno: Steno,
) -> None:
    accepted = REGISTRY.get_sample_value("steno_upload_bytes_total") or 0
    raw = await steno.client().audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=speech().open("rb"), response_format="json"
    )
    transcription = raw.parse()
    assert_heard(transcription.text)
    uploaded = REGISTRY.get_sample_value("steno_upload_bytes_total")
    assert uploaded == accepted + speech().stat().st_size

    job_id = raw.headers["Steno-Job-Id"]
    async with grpc.aio.insecure_channel(steno.grpc) as channel:
        stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
        job = (await stub.GetJob(pb.GetJobRequest(job_id=job_id), metadata=steno.metadata)).job
        listed = await stub.ListJobs(pb.ListJobsRequest(), metadata=steno.metadata)
    assert job.state == job_pb2.JOB_STATE_COMPLETED
    assert job.filename == "speech.wav" and job.content_type == "audio/wav"
    assert job.size_bytes == speech().stat().st_size
    assert job.original_text == transcription.text
    assert [j.job_id for j in listed.jobs] == [job_id]


async def test_text_srt_and_vtt_answers(steno: Steno) -> None:
    client = steno.client()
    text = await client.audio.transcriptions.create(
        model="whisper-1", file=speech().open("rb"), response_format="text"
    )
    srt = await client.audio.transcriptions.create(
        model="whisper-1", file=speech().open("rb"), response_format="srt"
    )
    vtt = await client.audio.transcriptions.create(
        model="whisper-1", file=speech().open("rb"), response_format="vtt"
    )

    assert_heard(text)
    assert re.match(r"1\n00:00:00,\d{3} --> 00:00:\d\d,\d{3}\n\S", srt), srt
    assert vtt.startswith("WEBVTT\n\n00:00:")
    cue_text = [line for line in srt.splitlines() if line and "-->" not in line][1::2]
    assert_heard(" ".join(cue_text))


async def test_verbose_json_has_language_duration_and_timed_segments(steno: Steno) -> None:
    verbose = await steno.client().audio.transcriptions.create(
        model="whisper-1",
        file=speech().open("rb"),
        response_format="verbose_json",
        timestamp_granularities=["segment", "word"],
    )

    assert verbose.language == "en"
    assert 2 < verbose.duration < 20
    assert_heard(verbose.text)
    segments = verbose.segments or []
    assert [s.id for s in segments] == list(range(len(segments))) and segments
    assert all(0 <= s.start <= s.end <= verbose.duration + 0.5 for s in segments)
    assert_heard(" ".join(s.text for s in segments))
    # The engine gives no word timings: left out rather than made up.
    assert verbose.words is None


async def test_a_lexicon_named_in_extra_body_rewrites_the_transcript(steno: Steno) -> None:
    async with grpc.aio.insecure_channel(steno.grpc) as channel:
        lexicons = lexicon_pb2_grpc.LexiconServiceStub(channel)
        created = await lexicons.CreateLexicon(
            lexicon_pb2.CreateLexiconRequest(
                lexicon=lexicon_pb2.Lexicon(
                    name="reports",
                    entries=[lexicon_pb2.LexiconEntry(phrase="TPS report", sounds_like=["report"])],
                )
            ),
            metadata=steno.metadata,
        )
    lexicon_id = created.lexicon.lexicon_id

    raw = await steno.client().audio.transcriptions.with_raw_response.create(
        model="whisper-1",
        file=speech().open("rb"),
        extra_body={"lexicon_id": lexicon_id, "labels": json.dumps({"team": "qa"})},
    )

    assert "TPS report" in raw.parse().text
    async with grpc.aio.insecure_channel(steno.grpc) as channel:
        stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
        request = pb.GetJobRequest(job_id=raw.headers["Steno-Job-Id"])
        job = (await stub.GetJob(request, metadata=steno.metadata)).job
    assert job.lexicon_id == lexicon_id and job.lexicon_version == created.lexicon.version
    assert "TPS report" in job.processed_text and "TPS report" not in job.original_text
    assert dict(job.labels) == {"team": "qa"}


async def test_a_wrong_key_is_an_authentication_error(steno: Steno) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        await steno.client(OTHER_KEY).audio.transcriptions.create(
            model="whisper-1", file=speech().open("rb")
        )
    assert refused.value.status_code == 401
    assert refused.value.code == "api_key_invalid"


async def test_a_file_over_the_size_limit_is_413(steno: Steno, tmp_path: Path) -> None:
    big = tmp_path / "big.wav"
    big.write_bytes(speech().read_bytes()[:44] + bytes(MAX_UPLOAD + 1))

    with pytest.raises(openai.APIStatusError) as refused:
        await steno.client().audio.transcriptions.create(model="whisper-1", file=big.open("rb"))

    assert refused.value.status_code == 413
    assert refused.value.code == "upload_too_large"


async def test_a_file_that_is_not_audio_is_a_bad_request(steno: Steno, tmp_path: Path) -> None:
    notes = tmp_path / "notes.wav"
    notes.write_text("these are not the sounds you are looking for\n" * 10)

    with pytest.raises(openai.BadRequestError) as refused:
        await steno.client().audio.transcriptions.create(model="whisper-1", file=notes.open("rb"))

    error = refused.value.body
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_field"
    assert "audio" in error["message"]


async def test_bad_form_fields_are_refused_naming_the_field(steno: Steno) -> None:
    client = steno.client()
    for extra, param in [
        ({"response_format": "docx"}, "response_format"),
        ({"retention": "a fortnight"}, "retention"),
        ({"labels": "team"}, "labels"),
        ({"webhook_url": "http://127.0.0.1:9/hook"}, "webhook_url"),
        ({"lexicon_id": "00000000-0000-0000-0000-000000000000"}, None),
    ]:
        with pytest.raises(openai.APIStatusError) as refused:
            await client.audio.transcriptions.create(
                model="whisper-1", file=speech().open("rb"), extra_body=extra
            )
        body = refused.value.body
        assert isinstance(body, dict), extra
        assert body["param"] == param, body
        assert refused.value.status_code == (404 if param is None else 400), body


@pytest.mark.parametrize(("field", "value"), [("lexicon_id", "x"), ("model", "openai")])
async def test_a_job_field_after_the_file_is_refused_and_nothing_is_queued(
    steno: Steno, field: str, value: str
) -> None:
    audio = part_head("file", "speech.wav") + speech().read_bytes() + b"\r\n"
    body = audio + form_field(field, value) + END
    async with httpx.AsyncClient(base_url=steno.http) as client:
        answer = await client.post(
            "/v1/audio/transcriptions",
            content=body,
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": CONTENT_TYPE},
        )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == field
    assert "before the file" in answer.json()["error"]["message"]
    async with grpc.aio.insecure_channel(steno.grpc) as channel:
        stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
        assert not (await stub.ListJobs(pb.ListJobsRequest(), metadata=steno.metadata)).jobs


async def test_models_health_and_metrics(steno: Steno) -> None:
    models = await steno.client().models.list()
    async with httpx.AsyncClient(base_url=steno.http) as client:
        health = await client.get("/healthz")
        metrics = await client.get("/metrics")

    assert [m.id for m in models.data] == ["whisper-1", "local/tiny.en"]
    assert health.status_code == 200 and health.text == "SERVING\n"
    assert metrics.status_code == 200 and "steno_uploads_total" in metrics.text


@dataclass
class Idle:
    """A gateway with no worker: its jobs stay QUEUED, and their requests wait."""

    gateway: Gateway
    jobs: JobRepository
    http: str

    def client(self, key: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.http}/v1", api_key=key, max_retries=0)

    async def recorded(self, count: int) -> list[Job]:
        """The jobs, once there are ``count`` of them."""

        async def jobs() -> list[Job] | None:
            found = await self.jobs.list_jobs(None, states=[], limit=10, after=None)
            return found if len(found) >= count else None

        return await eventually(jobs)


@pytest.fixture
async def idle(settings: DevSettings) -> AsyncIterator[Idle]:
    """Authentication off, one job at a time per tenant, clients that pause for half a
    second given up on, no worker."""
    settings = settings.model_copy(
        update={
            "quotas": QuotaSettings(concurrent_jobs=1),
            "uploads": UploadSettings(upload_idle_timeout_seconds=0.5),
        }
    )
    async with open_adapters(settings) as adapters:
        gateway = build_gateway(settings, adapters)
        await gateway.start("127.0.0.1", 0)
        http_port = await gateway.http.start("127.0.0.1", 0)
        try:
            yield Idle(gateway, adapters.jobs(), f"http://127.0.0.1:{http_port}")
        finally:
            await gateway.stop(0)


async def test_without_authentication_any_key_will_do(idle: Idle) -> None:
    models = await idle.client("anything at all").models.list()
    assert models.data[0].id == "whisper-1"


async def test_over_quota_is_429_with_retry_after_and_a_stopping_gateway_answers_503(
    idle: Idle,
) -> None:
    client = idle.client("any")
    waiting = asyncio.ensure_future(
        client.audio.transcriptions.create(model="whisper-1", file=speech().open("rb"))
    )
    [job] = await idle.recorded(1)  # the tenant's one job, its request waiting

    with pytest.raises(openai.RateLimitError) as refused:
        await client.audio.transcriptions.create(model="whisper-1", file=speech().open("rb"))
    assert refused.value.code == "quota_exceeded"
    assert refused.value.response.headers["Retry-After"] == "30"

    stopping = asyncio.ensure_future(idle.gateway.stop(5))
    with pytest.raises(openai.InternalServerError) as stopped:
        await waiting
    await stopping
    assert stopped.value.status_code == 503 and stopped.value.code == "gateway_stopping"
    assert stopped.value.response.headers["Retry-After"] == "1"
    # The job stays queued, for a worker to take; the answer says which it is.
    assert stopped.value.response.headers["Steno-Job-Id"] == str(job.job_id)
    assert [j.state for j in await idle.recorded(1)] == [JobState.QUEUED]


async def test_an_unknown_route_or_method_is_refused_in_openai_shape(idle: Idle) -> None:
    async with httpx.AsyncClient(base_url=idle.http) as client:
        missing = await client.post("/v1/audio/translations")
        wrong = await client.get("/v1/audio/transcriptions")

    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert "/v1/audio/translations" in missing.json()["error"]["message"]
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


async def test_a_client_that_stops_sending_is_given_up_on_and_nothing_is_kept(
    idle: Idle,
) -> None:
    head = part_head("file", "speech.wav") + speech().read_bytes()[:1000]
    reader, writer = await asyncio.open_connection(*idle.http.removeprefix("http://").split(":"))
    writer.write(
        b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: steno\r\n"
        + f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len(head) + 10**6}\r\n\r\n".encode()
        + head
    )
    async with asyncio.timeout(10):
        status = await reader.readline()
    writer.close()

    assert status.startswith(b"HTTP/1.1 408 "), status
    assert await idle.jobs.list_jobs(None, states=[], limit=10, after=None) == []


async def test_health_follows_the_grpc_servers(idle: Idle) -> None:
    async with httpx.AsyncClient(base_url=idle.http) as client:
        assert (await client.get("/healthz")).status_code == 200
        await idle.gateway.server.set_serving(False)
        answer = await client.get("/healthz")
    assert (answer.status_code, answer.text) == (503, "NOT_SERVING\n")


async def test_a_job_that_fails_answers_with_its_error(steno: Steno, tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 8)

    with pytest.raises(openai.APIStatusError) as failed:
        await steno.client().audio.transcriptions.create(model="whisper-1", file=broken.open("rb"))

    assert failed.value.code == "job_failed" and failed.value.status_code == 400
    job_id = failed.value.response.headers["Steno-Job-Id"]
    async with grpc.aio.insecure_channel(steno.grpc) as channel:
        stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
        job = (await stub.GetJob(pb.GetJobRequest(job_id=job_id), metadata=steno.metadata)).job
    assert job.state == job_pb2.JOB_STATE_FAILED
    assert job.error.message in failed.value.message


async def test_a_client_that_hangs_up_while_waiting_leaves_its_job_to_finish(
    steno: Steno,
) -> None:
    audio = part_head("file", "speech.wav") + speech().read_bytes() + b"\r\n" + END
    async with httpx.AsyncClient(base_url=steno.http) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(
                "/v1/audio/transcriptions",
                content=audio,
                headers={"Authorization": f"Bearer {KEY}", "Content-Type": CONTENT_TYPE},
                timeout=httpx.Timeout(30, read=0.01),
            )

    async with grpc.aio.insecure_channel(steno.grpc) as channel:
        stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)

        async def listed() -> list[job_pb2.Job] | None:
            jobs = await stub.ListJobs(pb.ListJobsRequest(), metadata=steno.metadata)
            return list(jobs.jobs) or None

        # Recorded although the client left before it could be: its bytes had all arrived.
        [job] = await eventually(listed)
        watch = stub.WatchJob(pb.WatchJobRequest(job_id=job.job_id), metadata=steno.metadata)
        async with asyncio.timeout(60):
            states = [update.job.state async for update in watch]
    assert states[-1] == job_pb2.JOB_STATE_COMPLETED


async def test_with_tls_on_the_http_api_is_https_and_requires_the_client_certificate(
    settings: DevSettings, tmp_path: Path
) -> None:
    ca = trustme.CA()
    server, client = ca.issue_cert("127.0.0.1"), ca.issue_cert("client")
    for name, blob in [
        ("server.pem", server.cert_chain_pems[0]),
        ("server.key", server.private_key_pem),
        ("ca.pem", ca.cert_pem),
    ]:
        blob.write_to_path(str(tmp_path / name))
    tls = TlsSettings(
        cert_file=tmp_path / "server.pem",
        key_file=tmp_path / "server.key",
        client_ca_file=tmp_path / "ca.pem",
    )
    with_tls = settings.model_copy(update={"serving_tls": tls})
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    async with open_adapters(with_tls) as adapters:
        gateway = build_gateway(with_tls, adapters)
        await gateway.start("127.0.0.1", 0)
        port = await gateway.http.start("127.0.0.1", 0)
        try:
            async with httpx.AsyncClient(verify=trusted) as anonymous:
                with pytest.raises(httpx.HTTPError):  # no client certificate
                    await anonymous.get(f"https://127.0.0.1:{port}/healthz")
            client.configure_cert(trusted)
            async with httpx.AsyncClient(verify=trusted) as known:
                models = await openai.AsyncOpenAI(
                    base_url=f"https://127.0.0.1:{port}/v1", api_key="any", http_client=known
                ).models.list()
        finally:
            await gateway.stop(0)
    assert models.data[0].id == "whisper-1"
