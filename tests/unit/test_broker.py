"""The pause after a failed handler, and the in-process queue's redelivery and delays."""

from __future__ import annotations

import uuid

from steno.common.broker import FailurePause, RetryLater, TranscriptionRequest
from steno.common.broker.amqp import RETRY_DELAYS, retry_delay
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


async def test_in_process_queue_delays_a_request_its_handler_asked_to_retry_later() -> None:
    queue = InProcessJobQueue()
    request = TranscriptionRequest(uuid.uuid4(), "default")
    handler = FailsOnce(RetryLater(0.2, "rate limited"))

    await queue.publish(request)
    await consume_until_success(queue, handler, timeout=10)

    assert handler.calls == [request, request]
    assert handler.times[1] - handler.times[0] >= 0.2


def test_a_retry_delay_rounds_up_to_the_next_retry_queue() -> None:
    assert [retry_delay(s) for s in (0, 0.3, 1, 1.5, 7, 600, 10**6)] == [
        1, 1, 1, 2, 10, 600, RETRY_DELAYS[-1]
    ]  # fmt: skip
