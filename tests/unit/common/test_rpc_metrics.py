"""Per-RPC metrics: every call of a GrpcServer counted and timed under the code its client
sees, whether the handler returned, set a code, aborted, raised or was cancelled."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from steno.common.grpc_server import GrpcServer


async def ok(request: bytes, context: Any) -> bytes:
    return request


async def abort(request: bytes, context: Any) -> bytes:
    await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    raise AssertionError("abort raises")


async def set_code(request: bytes, context: Any) -> bytes:
    context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
    context.set_details("not now")
    return b""


async def boom(request: bytes, context: Any) -> bytes:
    raise ValueError("a bug")


async def upload(requests: AsyncIterator[bytes], context: Any) -> bytes:
    return b"".join([chunk async for chunk in requests])


async def watch(request: bytes, context: Any) -> AsyncIterator[bytes]:
    for n in range(3):
        yield bytes([n])


async def hang(request: bytes, context: Any) -> AsyncIterator[bytes]:
    yield b"first"
    await asyncio.Event().wait()


@dataclass
class Probe:
    """A server with one service of this test's own, so its counts start at zero."""

    channel: grpc.aio.Channel
    service: str

    def stub(self, kind: str, method: str) -> Any:
        """The channel's ``kind`` (unary_unary, stream_unary, ...) callable for ``method``."""
        return getattr(self.channel, kind)(f"/{self.service}/{method}")

    def sample(self, name: str, method: str, grpc_type: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(
            name,
            {"grpc_type": grpc_type, "grpc_service": self.service, "grpc_method": method} | labels,
        )

    def handled(self, method: str, grpc_type: str, code: str) -> float | None:
        return self.sample("grpc_server_handled_total", method, grpc_type, grpc_code=code)


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    service = f"test.Probe{uuid.uuid4().hex[:8]}"
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Ok": grpc.unary_unary_rpc_method_handler(ok),
        "Abort": grpc.unary_unary_rpc_method_handler(abort),
        "SetCode": grpc.unary_unary_rpc_method_handler(set_code),
        "Boom": grpc.unary_unary_rpc_method_handler(boom),
        "Upload": grpc.stream_unary_rpc_method_handler(upload),
        "Watch": grpc.unary_stream_rpc_method_handler(watch),
        "Hang": grpc.unary_stream_rpc_method_handler(hang),
    }
    generic = grpc.method_handlers_generic_handler(service, handlers)
    server = GrpcServer([service], [lambda s: s.add_generic_rpc_handlers((generic,))])
    port = await server.start("127.0.0.1", 0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Probe(channel, service)
    await server.stop(0)


async def until(condition: Callable[[], bool], *, timeout: float = 5) -> None:
    """Waits for ``condition``: the server records a call after its client has seen it end."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_returned_call_is_ok_and_timed(probe: Probe) -> None:
    for _ in range(2):
        assert await probe.stub("unary_unary", "Ok")(b"hi") == b"hi"
    await until(lambda: probe.handled("Ok", "unary", "OK") == 2)
    assert probe.sample("grpc_server_started_total", "Ok", "unary") == 2
    assert probe.sample("grpc_server_handling_seconds_count", "Ok", "unary") == 2
    assert probe.sample("grpc_server_msg_received_total", "Ok", "unary") == 2
    assert probe.sample("grpc_server_msg_sent_total", "Ok", "unary") == 2


@pytest.mark.parametrize(
    ("method", "code"),
    [("Abort", "NOT_FOUND"), ("SetCode", "FAILED_PRECONDITION"), ("Boom", "UNKNOWN")],
)
async def test_a_failed_call_counts_under_the_code_its_client_got(
    probe: Probe, method: str, code: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await probe.stub("unary_unary", method)(b"")
    assert failed.value.code().name == code
    await until(lambda: probe.handled(method, "unary", code) == 1)
    assert probe.handled(method, "unary", "OK") is None
    assert probe.sample("grpc_server_handling_seconds_count", method, "unary") == 1


async def test_a_client_stream_counts_its_messages(probe: Probe) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"a", b"b", b"c", b"d"):
            yield chunk

    assert await probe.stub("stream_unary", "Upload")(chunks()) == b"abcd"
    await until(lambda: probe.handled("Upload", "client_stream", "OK") == 1)
    assert probe.sample("grpc_server_msg_received_total", "Upload", "client_stream") == 4
    assert probe.sample("grpc_server_msg_sent_total", "Upload", "client_stream") == 1


async def test_a_server_stream_counts_its_messages(probe: Probe) -> None:
    responses = [r async for r in probe.stub("unary_stream", "Watch")(b"")]
    assert responses == [b"\0", b"\1", b"\2"]
    await until(lambda: probe.handled("Watch", "server_stream", "OK") == 1)
    assert probe.sample("grpc_server_msg_sent_total", "Watch", "server_stream") == 3
    assert probe.sample("grpc_server_msg_received_total", "Watch", "server_stream") == 1


async def test_a_call_its_client_cancels_is_cancelled(probe: Probe) -> None:
    call = probe.stub("unary_stream", "Hang")(b"")
    assert await call.read() == b"first"
    call.cancel()
    await until(lambda: probe.handled("Hang", "server_stream", "CANCELLED") == 1)
    assert probe.sample("grpc_server_handling_seconds_count", "Hang", "server_stream") == 1


async def test_a_call_past_its_deadline_is_deadline_exceeded(probe: Probe) -> None:
    call = probe.stub("unary_stream", "Hang")(b"", timeout=0.2)
    assert await call.read() == b"first"
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call.read()
    assert failed.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    await until(lambda: probe.handled("Hang", "server_stream", "DEADLINE_EXCEEDED") == 1)


async def test_the_servers_own_health_service_is_measured(probe: Probe) -> None:
    health = health_pb2_grpc.HealthStub(probe.channel)
    labels = {"grpc_type": "unary", "grpc_service": "grpc.health.v1.Health"}
    labels |= {"grpc_method": "Check", "grpc_code": "NOT_FOUND"}
    before = REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0
    with pytest.raises(grpc.aio.AioRpcError):
        await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    await until(
        lambda: REGISTRY.get_sample_value("grpc_server_handled_total", labels) == before + 1
    )


async def test_a_stream_a_handler_writes_itself_is_measured_too(probe: Probe) -> None:
    # Health.Watch is a coroutine that calls context.write instead of yielding.
    health = health_pb2_grpc.HealthStub(probe.channel)
    labels = {"grpc_type": "server_stream", "grpc_service": "grpc.health.v1.Health"}
    labels |= {"grpc_method": "Watch", "grpc_code": "CANCELLED"}
    before = REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0
    watch = health.Watch(health_pb2.HealthCheckRequest(service=probe.service))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
    watch.cancel()
    await until(
        lambda: REGISTRY.get_sample_value("grpc_server_handled_total", labels) == before + 1
    )
