"""Per-RPC Prometheus metrics for every grpc.aio server, by a server interceptor.

The names and labels are grpc-ecosystem/go-grpc-prometheus's, which the usual gRPC
dashboards and alerts query: ``grpc_server_started_total``, ``grpc_server_handled_total``
(with ``grpc_code``), the ``grpc_server_handling_seconds`` histogram and
``grpc_server_msg_received_total`` / ``grpc_server_msg_sent_total``, each labelled
``grpc_type``, ``grpc_service`` and ``grpc_method``. As there, a unary call counts one
message each way; messages a handler reads or writes through ``context.read()`` and
``context.write()`` instead of its request iterator and ``yield`` are not counted (only
``grpc.health.v1.Health/Watch`` does that here).

A call's code is the one its client sees: the code of ``context.abort`` (which raises), the
one a handler set with ``context.set_code`` and returned, OK, UNKNOWN for any other
exception, and CANCELLED (DEADLINE_EXCEEDED once its deadline passed) for a call its client
or the server's shutdown cancelled.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

_LABELS = ["grpc_type", "grpc_service", "grpc_method"]
# Seconds: from a GetJob's millisecond to an hour-long upload or a watch of a long job.
HANDLING_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
)  # fmt: skip

STARTED = Counter("grpc_server_started_total", "RPCs started on the server.", _LABELS)
HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, whatever their outcome.",
    [*_LABELS, "grpc_code"],
)
HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Seconds from the start of an RPC to its end on the server.",
    _LABELS,
    buckets=HANDLING_BUCKETS,
)
MSG_RECEIVED = Counter(
    "grpc_server_msg_received_total", "RPC messages received on the server.", _LABELS
)
MSG_SENT = Counter("grpc_server_msg_sent_total", "RPC messages sent by the server.", _LABELS)


def rpc_type(handler: grpc.RpcMethodHandler[Any, Any]) -> str:
    """go-grpc-prometheus's ``grpc_type`` of a method."""
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


class MethodMetrics:
    """One method's label children, bound once: a call only increments and observes."""

    __slots__ = ("_handled", "_labels", "received", "seconds", "sent", "started")

    def __init__(self, grpc_type: str, full_method: str) -> None:
        service, _, method = full_method.strip("/").partition("/")
        self._labels = (grpc_type, service, method)
        self.started = STARTED.labels(*self._labels)
        self.seconds = HANDLING_SECONDS.labels(*self._labels)
        self.received = MSG_RECEIVED.labels(*self._labels)
        self.sent = MSG_SENT.labels(*self._labels)
        self._handled: dict[grpc.StatusCode, Any] = {}

    def handled(self, code: grpc.StatusCode, started_at: float) -> None:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = HANDLED.labels(*self._labels, code.name)
        child.inc()
        self.seconds.observe(time.perf_counter() - started_at)


class ServerMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Measures every call to a method the server has; put it first, so that the calls
    later interceptors refuse (authentication) are counted with their codes."""

    def __init__(self) -> None:
        self._methods: dict[str, MethodMetrics] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        metrics = self._methods.get(method)
        if metrics is None:
            metrics = self._methods[method] = MethodMetrics(rpc_type(handler), method)
        measured: grpc.RpcMethodHandler[Any, Any] = _measured(handler, metrics)
        return measured


def _measured(handler: Any, metrics: MethodMetrics) -> Any:
    """``handler`` with its behaviour wrapped to count and time each call."""
    if handler.request_streaming:
        kind = "stream_stream" if handler.response_streaming else "stream_unary"
    else:
        kind = "unary_stream" if handler.response_streaming else "unary_unary"
    behaviour = getattr(handler, kind)
    streamed_requests = handler.request_streaming

    def requests_of(request: Any) -> Any:
        if streamed_requests:
            return _CountedRequests(request, metrics.received)
        metrics.received.inc()
        return request

    if inspect.isasyncgenfunction(behaviour):

        async def streaming(request: Any, context: Any) -> AsyncIterator[Any]:
            metrics.started.inc()
            started_at = time.perf_counter()
            try:
                async for response in behaviour(requests_of(request), context):
                    metrics.sent.inc()
                    yield response
            except BaseException as exc:
                metrics.handled(_raised_code(exc, context), started_at)
                raise
            metrics.handled(_returned_code(context), started_at)

        return handler._replace(**{kind: streaming})

    async def call(request: Any, context: Any) -> Any:
        metrics.started.inc()
        started_at = time.perf_counter()
        try:
            response = await behaviour(requests_of(request), context)
        except BaseException as exc:
            metrics.handled(_raised_code(exc, context), started_at)
            raise
        if not handler.response_streaming:
            metrics.sent.inc()
        metrics.handled(_returned_code(context), started_at)
        return response

    return handler._replace(**{kind: call})


def _returned_code(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    return context.code() or grpc.StatusCode.OK


def _raised_code(
    exc: BaseException, context: grpc.aio.ServicerContext[Any, Any]
) -> grpc.StatusCode:
    if isinstance(exc, grpc.aio.AbortError):
        return context.code() or grpc.StatusCode.UNKNOWN
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            return grpc.StatusCode.DEADLINE_EXCEEDED
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


class _CountedRequests:
    """A call's request stream, counting each message as the handler takes it."""

    __slots__ = ("_iterator", "_received", "_requests")

    def __init__(self, requests: Any, received: Any) -> None:
        self._requests = requests
        self._received = received
        self._iterator: Any = None

    def __aiter__(self) -> _CountedRequests:
        return self

    async def __anext__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._requests.__aiter__()
        request = await self._iterator.__anext__()
        self._received.inc()
        return request
