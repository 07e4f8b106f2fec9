"""Load with faults: 200 jobs from 20 concurrent clients while a worker is killed and
restarted twice. Every job must complete, once. The engine is the OpenAI one against the
local fake API, so the test measures Steno's bookkeeping rather than Whisper's speed."""

from __future__ import annotations

import concurrent.futures
import time
from collections import Counter
from pathlib import Path

from steno.cli.dev import DevSettings
from steno.client import StenoClient
from steno.v1 import job_pb2
from tests.e2e.test_faults import gateway, transcriber
from tests.openai_server import FakeOpenAI
from tests.support import AUDIO, service_env, wait_for

CLIENTS = 20
JOBS_PER_CLIENT = 10


def test_200_jobs_survive_a_worker_killed_twice(
    settings: DevSettings, tmp_path: Path, openai_server: FakeOpenAI
) -> None:
    env = service_env(
        settings,
        STENO_ENGINE="openai",
        OPENAI_BASE_URL=openai_server.base_url,
        OPENAI_API_KEY="sk-load-test",
        STENO_LEASE_SECONDS="3",
        STENO_PROGRESS_INTERVAL_SECONDS="0.5",
        STENO_AMQP_PREFETCH="4",
    )
    audio = AUDIO / "speech.ogg"
    openai_server.latency = 0.2
    with (
        gateway(env, tmp_path / "gateway.log") as (_, address),
        transcriber(env, tmp_path / "steady.log"),
    ):

        def client_uploads(client_number: int) -> list[str]:
            with StenoClient(address) as client:
                return [
                    client.upload(audio, request_id=f"load-{client_number}-{n}").job_id
                    for n in range(JOBS_PER_CLIENT)
                ]

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            uploads = pool.map(client_uploads, range(CLIENTS))
            # Meanwhile, a second worker is killed twice, mid-job, and comes back each time.
            for round_number in range(2):
                log = tmp_path / f"flaky-{round_number}.log"
                with transcriber(env, log) as flaky:
                    wait_for(
                        lambda log=log: log.read_text().count('"job started"') >= 2,
                        timeout=120,
                        what="the worker to be in the middle of jobs",
                    )
                    flaky.kill()
                    flaky.wait()
            job_ids = [job_id for batch in uploads for job_id in batch]

        with StenoClient(address) as client:
            finished = [client.wait(job_id, timeout=180) for job_id in job_ids]
            listed = list(client.iter_jobs(page_size=100))
        elapsed = time.monotonic() - started

    states = Counter(job_pb2.JobState.Name(job.state) for job in finished)
    lost = CLIENTS * JOBS_PER_CLIENT - states["JOB_STATE_COMPLETED"]
    # Jobs beyond one per upload: a retried upload or a redelivery that made a second job.
    duplicated = len(listed) - CLIENTS * JOBS_PER_CLIENT
    taken_over = sum(1 for job in finished if job.attempts > 1)
    print(
        f"{len(job_ids)} uploads, {states['JOB_STATE_COMPLETED']} COMPLETED, {lost} lost, "
        f"{duplicated} duplicated, {taken_over} taken over after a kill, "
        f"{len(openai_server.requests)} engine calls, {elapsed:.0f} s"
    )
    assert len(set(job_ids)) == CLIENTS * JOBS_PER_CLIENT
    assert states == {"JOB_STATE_COMPLETED": CLIENTS * JOBS_PER_CLIENT}, states
    assert lost == 0 and duplicated == 0
    assert all(len(job.segments) == 2 for job in finished), "no job's segments doubled"
