"""How the gateway reads an upload stream: the end of a stream must be a real one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from steno.gateway.transcription_service import _chunks, with_idle_timeout
from steno.gateway.uploads import InvalidUpload, UploadStalled
from steno.v1 import transcription_service_pb2 as pb


class FakeContext:
    """Just enough of grpc.aio.ServicerContext: headers that can fail, as on a reset stream."""

    def __init__(self, reset: bool) -> None:
        self.reset = reset
        self.headers_sent = False

    async def send_initial_metadata(self, metadata: Any) -> None:
        if self.reset:
            raise RuntimeError('Failed "execute_batch": (SendInitialMetadataOperation,)')
        self.headers_sent = True


async def messages(*items: pb.UploadAudioRequest) -> AsyncIterator[pb.UploadAudioRequest]:
    for item in items:
        yield item


async def read_all(context: FakeContext, *items: pb.UploadAudioRequest) -> list[bytes]:
    return [chunk async for chunk in _chunks(messages(*items), context)]  # type: ignore[arg-type]


async def test_a_real_end_of_stream_confirms_the_client_and_ends() -> None:
    context = FakeContext(reset=False)
    chunks = await read_all(context, pb.UploadAudioRequest(chunk=b"ab"))
    assert chunks == [b"ab"]
    assert context.headers_sent


async def test_an_end_of_stream_from_a_reset_stream_is_a_cancellation() -> None:
    """gRPC hands the handler an end of stream when the client cancels; the upload must
    be abandoned, not recorded with part of its audio."""
    with pytest.raises(asyncio.CancelledError):
        await read_all(FakeContext(reset=True), pb.UploadAudioRequest(chunk=b"ab"))


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (pb.UploadAudioRequest(metadata=pb.UploadMetadata()), "metadata"),
        (pb.UploadAudioRequest(), "chunk"),
    ],
    ids=["metadata-again", "no-payload"],
)
async def test_only_chunks_may_follow_the_metadata(
    message: pb.UploadAudioRequest, field: str
) -> None:
    with pytest.raises(InvalidUpload) as caught:
        await read_all(FakeContext(reset=False), message)
    assert caught.value.field == field


async def test_a_quiet_client_is_cut_off_but_a_slow_reader_is_not() -> None:
    """The idle timer runs only while waiting for the client, not while the server works."""
    gate = asyncio.Event()

    async def client() -> AsyncIterator[pb.UploadAudioRequest]:
        yield pb.UploadAudioRequest(chunk=b"1")
        yield pb.UploadAudioRequest(chunk=b"2")
        await gate.wait()  # then goes quiet
        yield pb.UploadAudioRequest(chunk=b"3")

    received = []
    with pytest.raises(UploadStalled, match=r"sent nothing for 0\.05 s"):
        async for message in with_idle_timeout(client(), 0.05):
            received.append(message.chunk)
            await asyncio.sleep(0.1)  # the server is slower than the timeout: not idleness
    assert received == [b"1", b"2"]
