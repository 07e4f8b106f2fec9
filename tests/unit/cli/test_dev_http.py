"""Where ``steno dev`` serves the HTTP API when the default port is another program's."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.responses import PlainTextResponse

from steno.cli.dev import serve_dev_http
from steno.common.errors import CannotStart
from steno.gateway.http.server import HttpServer
from steno.gateway.settings import TlsSettings
from tests.support import free_port


def server() -> HttpServer:
    return HttpServer(PlainTextResponse("hello"), TlsSettings())


async def test_a_taken_default_port_leaves_the_http_api_off_with_a_warning(
    taken_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="steno.dev"):
        assert await serve_dev_http(server(), taken_port, "127.0.0.1", asked=False) == ""
    [warning] = [r for r in caplog.records if r.getMessage() == "http API off"]
    assert f"127.0.0.1:{taken_port}" in warning.reason  # type: ignore[attr-defined]


async def test_a_port_asked_for_must_be_had(taken_port: int) -> None:
    with pytest.raises(CannotStart, match="set STENO_HTTP_PORT to a free port"):
        await serve_dev_http(server(), taken_port, "127.0.0.1", asked=True)


async def test_a_free_port_serves_and_0_serves_nothing() -> None:
    http, port = server(), free_port()
    assert await serve_dev_http(http, 0, "127.0.0.1", asked=True) == ""
    url = await serve_dev_http(http, port, "127.0.0.1", asked=False)
    try:
        async with httpx.AsyncClient() as client:
            answer = await client.get(url)
    finally:
        await http.stop(1)
    assert url == f"http://127.0.0.1:{port}" and answer.text == "hello"
