"""Tracing is on only when the OTEL_* variables ask for it, and free when it is off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from steno.common.tracing import TracingMisconfigured, exporter_names

# What a fresh interpreter looks like after setup_tracing: whether each library the
# services use is instrumented, the SDK loaded, an exporter thread running; then a span,
# which must reach the console exporter by the time the process has exited.
PROBE = """
import json, sys, threading
import aio_pika, asyncpg, grpc, sqlalchemy.ext.asyncio, urllib3
from opentelemetry import trace
from steno.common.tracing import setup_tracing, tracer

provider = setup_tracing("steno-probe")
print(json.dumps({
    "provider": provider is not None,
    "grpc": grpc.aio.server.__module__ != "grpc.aio._server",
    "aio_pika": hasattr(aio_pika.Queue.consume, "__wrapped__"),
    "sqlalchemy": hasattr(sqlalchemy.ext.asyncio.create_async_engine, "__wrapped__"),
    "asyncpg": hasattr(asyncpg.connection.Connection.fetch, "__wrapped__"),
    "urllib3": hasattr(urllib3.connectionpool.HTTPConnectionPool.urlopen, "__wrapped__"),
    "sdk": "opentelemetry.sdk.trace" in sys.modules,
    "threads": threading.active_count(),
}), flush=True)
with tracer.start_as_current_span("probe"):
    pass
"""
COLLECTOR = "http://collector:4317"
LIBRARIES = ("grpc", "aio_pika", "sqlalchemy", "asyncpg", "urllib3")


def probe(**otel: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The probe's facts, and the spans it printed, run with only ``otel`` of OTEL_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | otel
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    facts, *spans = done.stdout.splitlines()
    return json.loads(facts), [json.loads(span) for span in spans]


@pytest.fixture(autouse=True)
def no_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        monkeypatch.delenv(name)


def test_with_no_otel_variable_nothing_is_instrumented_loaded_or_started() -> None:
    facts, spans = probe()

    assert facts == {
        "provider": False,
        **dict.fromkeys(LIBRARIES, False),
        "sdk": False,
        "threads": 1,
    }
    assert spans == []


def test_the_console_exporter_instruments_every_library_and_flushes_at_exit() -> None:
    facts, spans = probe(OTEL_TRACES_EXPORTER="console")

    assert facts["provider"] and facts["sdk"]
    assert {name: facts[name] for name in LIBRARIES} == dict.fromkeys(LIBRARIES, True)
    # One span, on one line, under the service's own name.
    [span] = spans
    assert span["name"] == "probe"
    assert span["resource"]["attributes"]["service.name"] == "steno-probe"


def test_otel_service_name_names_the_service() -> None:
    _, [span] = probe(OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="transcriber-eu-1")
    assert span["resource"]["attributes"]["service.name"] == "transcriber-eu-1"


@pytest.mark.parametrize(
    ("otel", "exporters"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": " Console , otlp "}, ["console", "otlp"]),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": COLLECTOR}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": COLLECTOR, "OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "false"}, ["console"]),
        # The SDK's own variables for other signals do not turn tracing on.
        ({"OTEL_METRICS_EXPORTER": "console", "OTEL_SERVICE_NAME": "steno"}, []),
    ],
)
def test_tracing_is_on_when_an_exporter_or_an_endpoint_is_set(
    monkeypatch: pytest.MonkeyPatch, otel: dict[str, str], exporters: list[str]
) -> None:
    for name, value in otel.items():
        monkeypatch.setenv(name, value)
    assert exporter_names() == exporters


def test_an_unknown_exporter_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console,zipkin")
    with pytest.raises(TracingMisconfigured, match="'zipkin'; Steno's exporters are console"):
        exporter_names()


def test_a_service_with_an_unknown_exporter_says_so_in_one_line_and_exits() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "STENO_"))}
    done = subprocess.run(
        [sys.executable, "-m", "steno.janitor"],
        env={**env, "OTEL_TRACES_EXPORTER": "jaeger"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "steno.janitor cannot run: OTEL_TRACES_EXPORTER names 'jaeger'; "
        "Steno's exporters are console, otlp, none"
    )
