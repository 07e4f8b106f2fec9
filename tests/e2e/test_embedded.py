"""``steno dev``: the whole stack in one process on its embedded defaults, driven by the
``steno`` CLI and by the real grpcurl binary."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import jiwer
import pytest

from steno.client import StenoClient
from steno.v1 import job_pb2, transcription_service_pb2_grpc
from steno.v1 import transcription_service_pb2 as pb
from tests.support import (
    AUDIO,
    SPEECH_TEXT,
    normalise,
    outer_env,
    sha256_of,
    steno_dev,
    wait_for,
)

MB = 1024 * 1024


@dataclass(frozen=True)
class DevStack:
    address: str
    workdir: Path

    @property
    def api_key(self) -> str:
        """The local admin key ``steno dev`` wrote on its first start."""
        return (self.workdir / ".steno" / "api-key").read_text().strip()

    @property
    def grpcurl_auth(self) -> list[str]:
        return ["-H", f"authorization: Bearer {self.api_key}"]


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    workdir = tmp_path_factory.mktemp("steno-dev")
    with steno_dev(workdir, STENO_CLEANUP_INTERVAL_MINUTES="0.01") as address:
        yield DevStack(address, workdir)


def steno(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI run in ``cwd``; beside ``steno dev``'s data dir it finds the local key there."""
    return subprocess.run(
        [sys.executable, "-m", "steno.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=outer_env(),
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def completed_job_id(dev_stack: DevStack) -> str:
    """Uploads the MP3 fixture with ``steno upload --wait``, audio kept for 0 hours."""
    done = steno(
        "upload", "--server", dev_stack.address, str(AUDIO / "speech.mp3"),
        "--wait", "--timeout", "120", "--retention-hours", "0", cwd=dev_stack.workdir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    error_rate = jiwer.wer(normalise(SPEECH_TEXT), normalise(done.stdout))
    print(f"WER {error_rate:.3f}: {done.stdout!r}")
    assert error_rate <= 0.3
    listing = steno("jobs", "--server", dev_stack.address, cwd=dev_stack.workdir)
    assert listing.returncode == 0, listing.stderr
    job_id, state = listing.stdout.split()[:2]
    assert state == "COMPLETED"
    return job_id


def test_dev_transcribes_and_expires_audio(dev_stack: DevStack, completed_job_id: str) -> None:
    with StenoClient(dev_stack.address, api_key=dev_stack.api_key) as client:
        job = client.get_job(completed_job_id)
        assert job.state == job_pb2.JOB_STATE_COMPLETED
        assert job.content_type == "audio/mpeg"
        assert job.size_bytes == (AUDIO / "speech.mp3").stat().st_size
        stored = dev_stack.workdir / ".steno" / "objects" / "audio" / completed_job_id
        # The embedded janitor loop runs every 0.6 s here; retention is zero.
        expired = wait_for(
            lambda: (j := client.get_job(completed_job_id)).HasField("audio_delete_time") and j,
            timeout=30,
            what="the embedded janitor to delete the audio",
        )
    assert not stored.exists()
    assert expired.original_text == job.original_text
    assert (dev_stack.workdir / ".steno" / "steno.db").exists(), "SQLite by default"


def test_grpcurl_lists_describes_and_reads_jobs(
    dev_stack: DevStack, completed_job_id: str, grpcurl: str
) -> None:
    def call(*args: str) -> str:
        done = subprocess.run(
            [grpcurl, "-plaintext", *dev_stack.grpcurl_auth, *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    services = call(dev_stack.address, "list").split()
    assert "steno.v1.TranscriptionService" in services
    assert "grpc.health.v1.Health" in services

    described = call(dev_stack.address, "describe", "steno.v1.Job")
    assert "steno.v1.Job is a message" in described
    assert ".steno.v1.JobState state = 2;" in described

    got = json.loads(
        call("-d", json.dumps({"job_id": completed_job_id}), dev_stack.address,
             "steno.v1.TranscriptionService/GetJob")
    )  # fmt: skip
    assert got["job"]["job_id"] == completed_job_id
    assert got["job"]["state"] == "JOB_STATE_COMPLETED"
    assert normalise(got["job"]["original_text"]).startswith("good morning")

    listed = json.loads(
        call("-d", '{"page_size": 5}', dev_stack.address, "steno.v1.TranscriptionService/ListJobs")
    )
    assert completed_job_id in [job["job_id"] for job in listed["jobs"]]

    subtitles = json.loads(
        call("-d", json.dumps({"job_id": completed_job_id, "format": "TRANSCRIPT_FORMAT_SRT"}),
             dev_stack.address, "steno.v1.TranscriptionService/GetTranscript")
    )  # fmt: skip
    assert subtitles["content_type"] == "application/x-subrip"
    assert subtitles["content"].startswith("1\n00:00:0")


def test_grpcurl_manages_lexicons(dev_stack: DevStack, grpcurl: str) -> None:
    def call(method: str, body: dict[str, object]) -> dict[str, object]:
        done = subprocess.run(
            [grpcurl, "-plaintext", *dev_stack.grpcurl_auth, "-d", json.dumps(body),
             dev_stack.address, f"steno.v1.LexiconService/{method}"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        result: dict[str, object] = json.loads(done.stdout)
        return result

    entry = {"phrase": "Kubernetes", "sounds_like": ["cooper netties"]}
    created = call("CreateLexicon", {"lexicon": {"name": "platform", "entries": [entry]}})
    lexicon = created["lexicon"]
    assert isinstance(lexicon, dict) and lexicon["version"] == "1"
    updated = call(
        "UpdateLexicon",
        {"lexicon": {"lexicon_id": lexicon["lexicon_id"], "name": "platform team"},
         "update_mask": {"paths": ["name"]}},
    )  # fmt: skip
    changed = updated["lexicon"]
    assert isinstance(changed, dict)
    assert (changed["name"], changed["version"]) == ("platform team", "2")
    assert changed["entries"] == [entry], "a masked update leaves the other fields alone"


def test_a_broken_upload_is_continued_on_the_embedded_stack(
    dev_stack: DevStack, grpcurl: str
) -> None:
    """The directory store and SQLite keep a broken upload's parts too: 10 MB sent, the
    client gone, grpcurl shows the 8 MiB part stored, and the rest completes the file."""
    audio = b"RIFF\xff\xff\xff\xffWAVEfmt " + random.randbytes(12 * MB)
    gone = threading.Event()

    def ten_mb_then_wait() -> Iterator[pb.UploadAudioRequest]:
        yield pb.UploadAudioRequest(metadata=pb.UploadMetadata(request_id="broken-1"))
        for start in range(0, 10 * MB, 64 * 1024):
            yield pb.UploadAudioRequest(chunk=audio[start : start + 64 * 1024])
        gone.wait(timeout=60)

    def status() -> dict[str, str]:
        done = subprocess.run(
            [grpcurl, "-plaintext", *dev_stack.grpcurl_auth, "-d", '{"request_id": "broken-1"}',
             dev_stack.address,
             "steno.v1.TranscriptionService/GetUploadStatus"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        result: dict[str, str] = json.loads(done.stdout) if done.returncode == 0 else {}
        return result

    auth = [("authorization", f"Bearer {dev_stack.api_key}")]
    with grpc.insecure_channel(dev_stack.address) as channel:
        stub = transcription_service_pb2_grpc.TranscriptionServiceStub(channel)
        call = stub.UploadAudio.future(ten_mb_then_wait(), metadata=auth)
        stored = wait_for(
            lambda: (s := status()).get("committed_bytes") == str(8 * MB) and s,
            timeout=60,
            what="the first part to be stored",
        )
        call.cancel()
        gone.set()
        assert "job" not in stored

        rest = [pb.UploadAudioRequest(metadata=pb.UploadMetadata(request_id="broken-1",
                                                                 offset=8 * MB))]  # fmt: skip
        rest += [
            pb.UploadAudioRequest(chunk=audio[start : start + 64 * 1024])
            for start in range(8 * MB, len(audio), 64 * 1024)
        ]
        job = stub.UploadAudio(iter(rest), metadata=auth).job

    assert job.size_bytes == len(audio)
    assert job.sha256 == hashlib.sha256(audio).hexdigest()
    assert status()["job"]["job_id"] == job.job_id  # type: ignore[index]
    objects = dev_stack.workdir / ".steno" / "objects" / "audio"
    assert hashlib.sha256((objects / job.job_id).read_bytes()).hexdigest() == job.sha256
    assert [p.name for p in objects.iterdir() if p.name.startswith(".")] == [], "no parts left"


def test_a_second_dev_on_the_same_port_refuses_to_start(dev_stack: DevStack) -> None:
    port = dev_stack.address.rsplit(":", 1)[1]
    done = steno("dev", "--port", port, cwd=dev_stack.workdir)
    assert done.returncode != 0
    assert f"steno.dev cannot run: cannot listen on 127.0.0.1:{port}" in done.stderr


def test_upload_of_a_missing_file_says_so(dev_stack: DevStack, tmp_path: Path) -> None:
    done = steno(
        "upload", "--server", dev_stack.address, str(tmp_path / "nope.ogg"), cwd=dev_stack.workdir
    )
    assert done.returncode == 1
    assert done.stderr.startswith("steno: [Errno 2] No such file or directory")


def test_dev_stores_the_audio_intact_under_its_data_dir(dev_stack: DevStack) -> None:
    audio = AUDIO / "speech.wav"
    with StenoClient(dev_stack.address, api_key=dev_stack.api_key) as client:
        job = client.upload(audio)
    stored = dev_stack.workdir / ".steno" / "objects" / "audio" / job.job_id
    assert stored.stat().st_size == job.size_bytes == audio.stat().st_size
    assert sha256_of(stored) == job.sha256 == sha256_of(audio)


def test_dev_keeps_its_local_admin_key_private_and_says_how_to_use_it(
    dev_stack: DevStack, tmp_path: Path
) -> None:
    key_file = dev_stack.workdir / ".steno" / "api-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert dev_stack.api_key.startswith("stn_")
    log = (dev_stack.workdir / "dev.log").read_text()
    assert '-H "authorization: Bearer $(cat .steno/api-key)"' in log
    assert dev_stack.api_key not in log, "the key itself is never logged"
    elsewhere = steno("jobs", "--server", dev_stack.address, cwd=tmp_path)
    assert elsewhere.returncode == 1
    assert "UNAUTHENTICATED: missing API key" in elsewhere.stderr
