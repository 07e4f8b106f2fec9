"""Where ``steno dev`` serves /metrics when the default port is another program's."""

from __future__ import annotations

import logging
import socket
import urllib.request

import pytest

from steno.cli.dev import serve_dev_metrics
from steno.common.errors import CannotStart
from steno.common.metrics import serve_metrics
from tests.support import free_port


def test_a_taken_default_port_leaves_metrics_off_with_a_warning(
    taken_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="steno.dev"):
        assert serve_dev_metrics(None, "127.0.0.1", default=taken_port) == 0
    [warning] = [r for r in caplog.records if r.getMessage() == "metrics off"]
    assert f"127.0.0.1:{taken_port}" in warning.reason  # type: ignore[attr-defined]


def test_a_port_asked_for_must_be_had(taken_port: int) -> None:
    with pytest.raises(CannotStart, match="set STENO_METRICS_PORT to a free port"):
        serve_dev_metrics(taken_port, "127.0.0.1")


def test_a_free_default_port_serves_metrics() -> None:
    port = free_port()
    assert serve_dev_metrics(None, "127.0.0.1", default=port) == port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert b"# TYPE" in response.read()


def test_an_ipv6_host_in_grpc_brackets_is_served() -> None:
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        port = sock.getsockname()[1]
    serve_metrics(port, "[::1]")
    with urllib.request.urlopen(f"http://[::1]:{port}/metrics", timeout=5) as response:
        assert response.status == 200
