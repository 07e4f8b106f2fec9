"""The shape every Steno gRPC server shares: health and reflection on, one bound port."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from steno.common.errors import CannotStart
from steno.common.reflection import enable_reflection
from steno.common.rpc_metrics import ServerMetricsInterceptor

# What a client may send ahead of what the server has read, per stream: a fixed HTTP/2
# window instead of one grown to the link's bandwidth-delay product. It bounds what an
# upload holds in the transport (and loses, if its gateway dies) to 4 MiB, and still allows
# 40 MB/s per upload at 100 ms of round trip.
STREAM_WINDOW_BYTES = 4 * 1024 * 1024
SERVER_OPTIONS = [
    # A second server on a taken port must fail, not silently share it.
    ("grpc.so_reuseport", 0),
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", STREAM_WINDOW_BYTES),
]


class PortUnavailable(CannotStart):
    """The server could not bind its address."""


class GrpcServer:
    """A grpc.aio server with ``grpc.health.v1.Health`` and server reflection (v1 and
    v1alpha).

    ``services`` are the full names of the application services being added; each gets a
    health status, and all of them are listed by reflection.
    """

    def __init__(
        self,
        services: Iterable[str],
        register: Iterable[Callable[[grpc.aio.Server], None]],
        *,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        """``credentials`` make the port TLS (:func:`grpc.ssl_server_credentials`)."""
        self._services = list(services)
        self._credentials = credentials
        self.health = health.aio.HealthServicer()
        # Metrics first: they see every call, those ``interceptors`` refuse too.
        measured = [ServerMetricsInterceptor(), *interceptors]
        self.server = grpc.aio.server(interceptors=measured, options=SERVER_OPTIONS)
        for add in register:
            add(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection([*self._services, health.SERVICE_NAME], self.server)
        self.port = 0
        # What health reports for the server's services, for other protocols to report too.
        self.serving = False

    async def start(self, host: str, port: int) -> int:
        """Binds and starts serving; returns the bound port (useful with ``port=0``)."""
        try:
            address = f"{host}:{port}"
            if self._credentials is None:
                self.port = self.server.add_insecure_port(address)
            else:
                self.port = self.server.add_secure_port(address, self._credentials)
        except RuntimeError as exc:
            raise PortUnavailable(f"cannot listen on {host}:{port}: is it already in use?") from exc
        await self.server.start()
        await self.set_serving(True)
        return self.port

    async def set_serving(self, serving: bool) -> None:
        self.serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self._services):
            await self.health.set(name, status)

    async def stop(self, grace: float) -> None:
        """Reports NOT_SERVING, then lets in-flight calls finish for up to ``grace`` seconds."""
        await self.set_serving(False)
        await self.server.stop(grace)
