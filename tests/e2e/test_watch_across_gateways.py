"""WatchJob and CancelJob across processes: two gateways and a transcriber on Postgres,
RabbitMQ and S3. A change made by one process reaches the watchers on another through the
job events exchange."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from steno.cli.dev import DevSettings
from steno.client import StenoClient
from steno.v1 import job_pb2
from tests.support import AUDIO, logged, running, service_env, wait_for, wait_serving

# The end of a watch: the last job, or what the watch raised.
Outcome = job_pb2.Job | BaseException | None
# Seconds within which a change on one process must reach a watcher on another: less than
# the gateways' re-read interval (5 s), so it came as an event.
EVENT_LATENCY = 4.0


class Watcher:
    """``StenoClient.watch`` in a thread, its jobs collected as they come."""

    def __init__(self, address: str, job_id: str) -> None:
        self._address = address
        self._job_id = job_id
        self._seen: queue.Queue[Outcome] = queue.Queue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with StenoClient(self._address) as client:
                for job in client.watch(self._job_id, timeout=180):
                    self._seen.put(job)
        except BaseException as exc:
            self._seen.put(exc)
        self._seen.put(None)

    def next(self, timeout: float) -> Outcome:
        return self._seen.get(timeout=timeout)

    def job(self, timeout: float) -> job_pb2.Job:
        seen = self.next(timeout)
        if isinstance(seen, BaseException):
            raise AssertionError(f"the watch failed: {seen!r}") from seen
        assert seen is not None, "the watch ended early"
        return seen

    def rest(self, timeout: float) -> list[job_pb2.Job]:
        """Every job until the watch ends."""
        jobs = []
        deadline = time.monotonic() + timeout
        while (seen := self.next(max(0.0, deadline - time.monotonic()))) is not None:
            if isinstance(seen, BaseException):
                raise AssertionError(f"the watch failed: {seen!r}") from seen
            jobs.append(seen)
        self._thread.join(timeout=5)
        return jobs


@contextmanager
def gateway(env: dict[str, str], log: Path) -> Iterator[str]:
    with running(["-m", "steno.gateway"], {**env, "STENO_GRPC_PORT": "0"}, log) as process:
        port = logged(log, "gateway listening", "port", timeout=60, process=process)
        wait_serving(f"127.0.0.1:{port}", timeout=60, process=process)
        yield f"127.0.0.1:{port}"


def state(job: job_pb2.Job) -> str:
    return job_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_")


def test_watchers_on_one_gateway_follow_jobs_changed_through_another(
    settings: DevSettings, tmp_path: Path
) -> None:
    env = service_env(settings)
    with ExitStack() as stack:
        address_a = stack.enter_context(gateway(env, tmp_path / "gateway-a.log"))
        address_b = stack.enter_context(gateway(env, tmp_path / "gateway-b.log"))
        client_a = stack.enter_context(StenoClient(address_a))
        client_b = stack.enter_context(StenoClient(address_b))

        # No transcriber yet: both jobs stay QUEUED until one is started below.
        kept = client_a.upload(AUDIO / "speech.wav")
        dropped = client_a.upload(AUDIO / "speech.ogg")

        # A cancel on B reaches a watcher on A.
        watching_dropped = Watcher(address_a, dropped.job_id)
        assert state(watching_dropped.job(timeout=10)) == "QUEUED"
        cancelled = client_b.cancel_job(dropped.job_id)
        assert state(cancelled) == "CANCELLED"
        seen = watching_dropped.rest(timeout=EVENT_LATENCY)
        assert [state(job) for job in seen] == ["CANCELLED"]
        assert seen[0].HasField("audio_expire_time")

        # A watcher on B follows, from QUEUED to COMPLETED, a job uploaded to A and run by
        # the transcriber.
        watching_kept = Watcher(address_b, kept.job_id)
        assert state(watching_kept.job(timeout=10)) == "QUEUED"
        transcriber_log = tmp_path / "transcriber.log"
        transcriber = stack.enter_context(
            running(
                ["-m", "steno.transcriber"],
                {**env, "STENO_GRPC_PORT": "0", "STENO_PROGRESS_INTERVAL_SECONDS": "0.2"},
                transcriber_log,
            )
        )
        updates = watching_kept.rest(timeout=180)

        states = [state(job) for job in updates]
        assert states[0] == "PROCESSING" and states[-1] == "COMPLETED", states
        assert set(states) == {"PROCESSING", "COMPLETED"}, states
        progress = [job.progress for job in updates]
        assert progress == sorted(progress) and progress[-1] == 1.0, progress
        assert "morning" in updates[-1].original_text.lower(), "the last one has the text"

        # The request the cancelled job had queued came to nothing.
        wait_for(
            lambda: any(
                "duplicate request ignored" in line and dropped.job_id in line
                for line in transcriber_log.read_text().splitlines()
            ),
            timeout=30,
            what="the transcriber to drop the cancelled job's request",
        )
        assert transcriber.poll() is None
        assert state(client_b.get_job(dropped.job_id)) == "CANCELLED"
        assert client_a.get_job(dropped.job_id).attempts == 0
