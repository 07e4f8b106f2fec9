"""Gateway, transcriber and janitor as separate processes on Postgres, RabbitMQ and S3."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path

import jiwer
import pytest
from botocore.exceptions import ClientError

from steno.cli.dev import DevSettings
from steno.client import StenoClient
from steno.v1 import job_pb2
from tests.conftest import S3Server
from tests.openai_server import FakeOpenAI
from tests.secret_scan import secrets_in
from tests.support import (
    AUDIO,
    SPEECH_TEXT,
    free_port,
    logged,
    normalise,
    running,
    service_env,
    wait_serving,
)


def scrape(port: int) -> str:
    """The Prometheus text a service serves on /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def run_janitor(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "steno.janitor"], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def test_upload_transcribe_and_expire_across_three_services(
    settings: DevSettings,
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
    openai_server: FakeOpenAI,
) -> None:
    env = service_env(settings)
    # The transcriber runs both engines; its OpenAI client talks to the local fake API.
    transcriber_env = {
        **env,
        "STENO_ENGINES": "local,openai",
        "OPENAI_BASE_URL": openai_server.base_url,
        "OPENAI_API_KEY": "sk-e2e-test",
    }
    gateway_metrics, transcriber_metrics = free_port(), free_port()
    with (
        running(
            ["-m", "steno.gateway"],
            {**env, "STENO_GRPC_PORT": "0", "STENO_METRICS_PORT": str(gateway_metrics)},
            tmp_path / "gateway.log",
        ) as gateway,
        running(
            ["-m", "steno.transcriber"],
            {**transcriber_env, "STENO_GRPC_PORT": "0",
             "STENO_METRICS_PORT": str(transcriber_metrics)},
            tmp_path / "transcriber.log",
        ) as transcriber,
    ):  # fmt: skip
        gateway_port = logged(
            tmp_path / "gateway.log", "gateway listening", "port", timeout=60, process=gateway
        )
        transcriber_port = logged(
            tmp_path / "transcriber.log",
            "transcriber consuming",
            "health_port",
            timeout=120,
            process=transcriber,
        )
        wait_serving(f"127.0.0.1:{gateway_port}", timeout=60, process=gateway)
        wait_serving(f"127.0.0.1:{transcriber_port}", timeout=60, process=transcriber)
        with StenoClient(f"127.0.0.1:{gateway_port}") as client:
            uploaded = client.upload(
                AUDIO / "speech.wav", chunk_size=64 * 1024, audio_retention=timedelta(0)
            )
            job = client.wait(uploaded.job_id, timeout=120)

            assert job.state == job_pb2.JOB_STATE_COMPLETED, job.error.message
            error_rate = jiwer.wer(normalise(SPEECH_TEXT), normalise(job.original_text))
            print(f"WER {error_rate:.3f}: {job.original_text!r}")
            assert error_rate <= 0.3
            assert job.language == "en"
            assert job.segments and job.segments[-1].end.ToTimedelta() > timedelta(seconds=5)
            assert 7.5 < job.duration.ToTimedelta().total_seconds() < 8.5
            assert job.model == "tiny.en" and job.engine == "local" and job.attempts == 1

            assert 'steno_uploads_total{code="OK"} 1.0' in scrape(gateway_metrics)
            assert 'steno_jobs_finished_total{state="COMPLETED"} 1.0' in scrape(transcriber_metrics)

            audio = (AUDIO / "speech.wav").read_bytes()
            key = f"audio/{job.job_id}"
            stored = s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
            assert len(stored) == job.size_bytes == len(audio)
            assert hashlib.sha256(stored).hexdigest() == job.sha256
            assert job.sha256 == hashlib.sha256(audio).hexdigest()

            summary = run_janitor(env)
            assert summary["deleted"] == 1 and summary["failed"] == 0, summary
            assert summary["bytes_freed"] == len(audio)
            with pytest.raises(ClientError) as missing:
                s3_server.client().head_object(Bucket=bucket, Key=key)
            assert missing.value.response["Error"]["Code"] == "404"
            expired = client.get_job(job.job_id)
            assert expired.HasField("audio_delete_time")
            assert expired.audio_delete_time.ToDatetime() >= job.complete_time.ToDatetime()
            assert expired.original_text == job.original_text, "the transcript outlives the audio"

            again = run_janitor(env)
            assert again == {
                "scanned": 0,
                "deleted": 0,
                "failed": 0,
                "bytes_freed": 0,
                "aborted_uploads": 0,
                "published": 0,
                "requeued": 0,
                "webhooks_requeued": 0,
                "errors": [],
            }

            # The OpenAI engine and a lexicon, across the processes: the fake API writes
            # "Part 1. Part 2.", and the team's lexicon says a part is a "Chapter".
            lexicon = client.create_lexicon("book", {"Chapter": ["part"]}, language="en")
            uploaded = client.upload(
                AUDIO / "speech.ogg", engine="openai", lexicon_id=lexicon.lexicon_id
            )
            job = client.wait(uploaded.job_id, timeout=60)
            assert job.state == job_pb2.JOB_STATE_COMPLETED, job.error.message
            assert (job.engine, job.model, job.language) == ("openai", "whisper-1", "en")
            assert job.original_text == "Part 1. Part 2."
            assert job.processed_text == "Chapter 1. Chapter 2."
            assert job.lexicon_version == 1
            [request] = openai_server.requests
            assert request.authorization == "Bearer sk-e2e-test"
            assert "Chapter" in (request.field("prompt") or "")
            subtitles = client.get_transcript(job.job_id, "vtt").content
            assert "00:00:05.000 --> " in subtitles and "Chapter 2." in subtitles

            # After all that, no secret in what either service exports.
            for port in (gateway_metrics, transcriber_metrics):
                assert secrets_in(scrape(port), known={"sk-e2e-test"}) == []
