"""Prometheus ``/metrics`` for long-running services."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

from steno.common.errors import CannotStart

log = logging.getLogger(__name__)


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Serves the process's metrics on ``host:port`` in a background thread; 0 turns it
    off."""
    if port == 0:
        return
    try:
        # gRPC takes an IPv6 address in brackets ("[::]"), the HTTP server without.
        start_http_server(port, host.removeprefix("[").removesuffix("]"))
    except OSError as exc:
        raise CannotStart(
            f"cannot serve metrics on {host}:{port} ({exc.strerror}): set STENO_METRICS_PORT "
            "to a free port, or 0 to turn metrics off"
        ) from exc
    log.info("metrics listening", extra={"port": port})
