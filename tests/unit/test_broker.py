"""The pause after a failed handler, and the in-process queue's redelivery."""

from __future__ import annotations

import uuid

from steno.common.broker import FailurePause, TranscriptionRequest
from steno.common.broker.memory import InProcessJobQueue
from tests.support import FailsOnce, consume_until_success


async def test_the_pause_doubles_up_to_its_ceiling_and_resets_on_success() -> None:
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    pause = FailurePause(0.5, 4.0, sleep=record)
    for _ in range(5):
        await pause.after_failure()
    pause.succeeded()
    await pause.after_failure()
    assert slept == [0.5, 1.0, 2.0, 4.0, 4.0, 0.5]


async def test_in_process_queue_redelivers_what_its_handler_failed_on() -> None:
    queue = InProcessJobQueue()
    request = TranscriptionRequest(uuid.uuid4(), "default")
    handler = FailsOnce()

    await queue.publish(request)
    await consume_until_success(queue, handler, timeout=10)

    assert handler.calls == [request, request]
