"""The in-process queue hands each request to its handler in the trace it was published in,
as RabbitMQ's message headers do, so that in ``steno dev`` an upload and its transcription
are one trace."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanContext

from steno.common.broker import FailurePause, TranscriptionRequest
from steno.common.broker.memory import InProcessJobQueue


async def test_every_delivery_of_a_request_is_in_the_trace_it_was_published_in() -> None:
    queue = InProcessJobQueue(new_pause=lambda: FailurePause(0.01))
    seen: list[SpanContext] = []
    second = asyncio.Event()

    async def fails_once(request: TranscriptionRequest) -> None:
        seen.append(trace.get_current_span().get_span_context())
        if len(seen) == 1:
            raise RuntimeError("database blip")
        second.set()

    # The consumer starts outside any span, as a worker does.
    consumer = asyncio.create_task(queue.consume(fails_once))
    try:
        with TracerProvider().get_tracer("test").start_as_current_span("upload") as upload:
            await queue.publish(TranscriptionRequest(uuid.uuid4(), "acme"))
        await asyncio.wait_for(second.wait(), timeout=5)
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer

    assert seen == [upload.get_span_context()] * 2
