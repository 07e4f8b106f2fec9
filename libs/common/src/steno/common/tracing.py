"""Tracing with OpenTelemetry, configured only by the standard ``OTEL_*`` variables.

Off unless ``OTEL_TRACES_EXPORTER`` or an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, and always off with
``OTEL_SDK_DISABLED=true``. Off costs nothing: the SDK is not imported, no library is
instrumented and no exporter thread runs; Steno's own spans (:data:`tracer`) are then the
API's non-recording ones.

On, the official instrumentations trace the gRPC server (not its health checks), aio-pika
(the trace context travels in each message's headers, so a job's transcription continues
the trace of its upload), SQLAlchemy and asyncpg, and urllib3 (the S3 client's requests).
The SDK reads everything else itself: ``OTEL_SERVICE_NAME`` (else each service's own name,
such as ``steno-gateway``), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``, the OTLP
exporter's endpoint, headers and timeout, and the batch processor's ``OTEL_BSP_*``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from opentelemetry import trace
from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER

from steno.common.errors import CannotStart

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

# Steno's own spans: the transcriber's job and its steps, the janitor's runs.
tracer = trace.get_tracer("steno")

# The names OTEL_TRACES_EXPORTER takes here; "none" alone turns tracing off.
EXPORTERS = ("console", "otlp", "none")

# The variables that turn tracing on, whichever exporter they choose.
_OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


class TracingMisconfigured(CannotStart):
    """``OTEL_TRACES_EXPORTER`` names an exporter Steno does not have."""


def exporter_names() -> list[str]:
    """The exporters the environment asks for; none means tracing is off.

    An OTLP endpoint alone means OTLP, the SDK's default exporter.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    chosen = os.environ.get(OTEL_TRACES_EXPORTER, "").strip().lower()
    if not chosen:
        return ["otlp"] if any(os.environ.get(name) for name in _OTLP_ENDPOINTS) else []
    names = [name.strip() for name in chosen.split(",") if name.strip()]
    unknown = sorted(set(names) - set(EXPORTERS))
    if unknown:
        raise TracingMisconfigured(
            f"OTEL_TRACES_EXPORTER names {', '.join(map(repr, unknown))}; "
            f"Steno's exporters are {', '.join(EXPORTERS)}"
        )
    return [name for name in names if name != "none"]


def setup_tracing(service_name: str, *, console: TextIO = sys.stdout) -> TracerProvider | None:
    """Turns tracing on for this process if the environment asks for it, under
    ``service_name`` unless ``OTEL_SERVICE_NAME`` says otherwise; returns the provider, or
    None when tracing stays off. Call it once, before the process makes its gRPC server,
    database engine or broker connection.

    The console exporter writes one JSON object per span on ``console``: stdout, unless the
    process's stdout is its output (the janitor's summary). Spans are exported in batches
    and the last ones flushed when the process exits.
    """
    names = exporter_names()
    if not names:
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    configured = OTELResourceDetector().detect().attributes.get(SERVICE_NAME)
    resource = Resource.create({SERVICE_NAME: str(configured or service_name)})
    # The sampler comes from OTEL_TRACES_SAMPLER; an atexit hook shuts the provider down.
    provider = TracerProvider(resource=resource)
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_EXPORTERS[name](console)))
    trace.set_tracer_provider(provider)
    _instrument_libraries()
    return provider


def _console_exporter(out: TextIO) -> SpanExporter:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    def one_line(span: ReadableSpan) -> str:
        return f"{span.to_json(indent=None)}\n"

    return ConsoleSpanExporter(out=out, formatter=one_line)


def _otlp_exporter(_: TextIO) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    # Endpoint, headers, TLS and timeout from OTEL_EXPORTER_OTLP_(TRACES_)*.
    return OTLPSpanExporter()


_EXPORTERS: dict[str, Callable[[TextIO], SpanExporter]] = {
    "console": _console_exporter,
    "otlp": _otlp_exporter,
}


def _instrument_libraries() -> None:
    """The official instrumentations, on the libraries Steno's adapters use.

    They patch the libraries' classes and factories, so they see the objects made after
    this, wherever they are made: the gRPC server of :class:`steno.common.grpc_server.
    GrpcServer`, the engines of :func:`steno.common.db.connection.create_engine`, the
    driver reads' asyncpg pool, aio-pika's channels and minio's urllib3 pool.
    """
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer, filters
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    # A probe every few seconds would be most of the spans, and none of the interest.
    not_health = filters.negate(filters.health_check())
    GrpcAioInstrumentorServer(filter_=not_health).instrument()  # type: ignore[no-untyped-call]
    AioPikaInstrumentor().instrument()
    # Its declared range stops short of SQLAlchemy 2.1, whose engine events it uses as
    # they were (the tests check its spans).
    SQLAlchemyInstrumentor().instrument(skip_dep_check=True)
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    _leave_prepared_statements_to_sqlalchemy()
    URLLib3Instrumentor().instrument()


def _leave_prepared_statements_to_sqlalchemy() -> None:
    """SQLAlchemy's asyncpg dialect runs every statement as an asyncpg prepared statement,
    which SQLAlchemy's spans already show: traced by asyncpg too, each would be there twice.
    asyncpg's spans stay for what runs on the connection itself: the driver reads (GetJob)
    and SQLAlchemy's transactions."""
    from asyncpg.prepared_stmt import PreparedStatement
    from opentelemetry.instrumentation.utils import unwrap

    for name, method in list(vars(PreparedStatement).items()):
        if hasattr(method, "__wrapped__"):
            unwrap(PreparedStatement, name)
