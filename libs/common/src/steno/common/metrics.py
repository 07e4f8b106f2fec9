"""Prometheus ``/metrics`` for long-running services."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

log = logging.getLogger(__name__)


def serve_metrics(port: int) -> None:
    """Serves ``/metrics`` on ``port`` in a background thread; 0 turns it off."""
    if port == 0:
        return
    start_http_server(port)
    log.info("metrics listening", extra={"port": port})
