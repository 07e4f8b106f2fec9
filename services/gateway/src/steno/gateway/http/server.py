"""The HTTP API on uvicorn, run on the gateway's event loop beside the gRPC server (not
``uvicorn.run``, which would own the loop and the process's signals)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from steno.common.errors import CannotStart
from steno.gateway.settings import TlsSettings

log = logging.getLogger(__name__)


class HttpServer:
    """``app`` served from :meth:`start` until :meth:`stop`; over TLS, with the client
    certificates it requires, when the gateway's gRPC port has them (``tls``), so that an
    operator who turned TLS on does not get a plaintext port beside it."""

    def __init__(self, app: ASGIApp, tls: TlsSettings) -> None:
        self._app = app
        self._tls = tls
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        """Serves on ``host:port`` (0 picks a free port; ``host`` may be an IPv6 address in
        gRPC's brackets); returns the bound port."""
        bare = host.removeprefix("[").removesuffix("]")
        try:
            family = socket.AF_INET6 if ":" in bare else socket.AF_INET
            sock = socket.create_server((bare, port), family=family)
        except OSError as exc:
            raise CannotStart(
                f"cannot serve HTTP on {host}:{port} ({exc.strerror}): set STENO_HTTP_PORT to "
                "a free port, or 0 to turn the HTTP API off"
            ) from exc
        # The process's own logging (JSON lines) carries uvicorn's; no access log.
        config = uvicorn.Config(
            self._app, log_config=None, access_log=False, lifespan="off", **_tls_options(self._tls)
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._server = server
        self._loop = asyncio.create_task(server.main_loop(), name="http server")
        self.port = sock.getsockname()[1]
        log.info("http listening", extra={"port": self.port})
        return self.port

    async def stop(self, grace: float) -> None:
        """Stops taking connections; requests under way get ``grace`` seconds to finish."""
        if self._server is None or self._loop is None:
            return
        self._server.config.timeout_graceful_shutdown = int(grace)
        self._server.should_exit = True
        await self._loop
        await self._server.shutdown()


def _tls_options(tls: TlsSettings) -> dict[str, Any]:
    if not tls.enabled:
        return {}
    options: dict[str, Any] = {"ssl_certfile": tls.cert_file, "ssl_keyfile": tls.key_file}
    if tls.client_ca_file is not None:
        options |= {"ssl_ca_certs": tls.client_ca_file, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return options
