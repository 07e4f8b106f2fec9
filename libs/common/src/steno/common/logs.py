"""Logging: one line per record, as JSON (the default) or as text for a person, with the
context fields the record carries and, while a span is active, its trace and span ids.

Pass context with ``extra``: ``log.info("job finished", extra={"job_id": ..., "state": ...})``.
A record that ends a step carries how long it took as ``duration_ms`` (see
:class:`Stopwatch`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry import trace

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class TraceContext(logging.Filter):
    """Adds the active span's ``trace_id`` and ``span_id`` (hex, as OpenTelemetry writes
    them) to each record, so that a log line can be found from its trace and the other
    way round. A record made outside any span gets neither."""

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace_id = trace.format_trace_id(span.trace_id)
            record.span_id = trace.format_span_id(span.span_id)
        return True


def context_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record carries beyond the standard ones: its ``extra``, and the trace
    context :class:`TraceContext` added."""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    }


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """Formats a record as a single JSON object with its context fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **context_fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """Formats a record for a person: time, level, logger and message, then its context
    fields as ``key=value`` (a value with spaces or quotes in it quoted), and a traceback
    on the lines after."""

    def format(self, record: logging.LogRecord) -> str:
        fields = "".join(f" {key}={_text(value)}" for key, value in context_fields(record).items())
        line = f"{_time(record)} {record.levelname:<7} {record.name}: {record.getMessage()}{fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text(value: object) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    text = str(value)
    if not text or any(c.isspace() or c in "\"'=" for c in text):
        return json.dumps(text)
    return text


_FORMATTERS: dict[LogFormat, type[logging.Formatter]] = {
    "json": JsonFormatter,
    "text": TextFormatter,
}


def configure_logging(level: str = "INFO", log_format: LogFormat = "json") -> None:
    """Sends every log record to stderr, one line each in ``log_format``; stdout stays free
    for program output."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FORMATTERS[log_format]())
    handler.addFilter(TraceContext())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Their INFO lines are per-request noise.
    for noisy in ("aiormq", "aio_pika", "botocore", "urllib3", "faster_whisper"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class Stopwatch:
    """Started when made; :meth:`elapsed_ms` is the ``duration_ms`` of the log line that
    ends the step it timed. ``clock`` gives seconds (the monotonic performance counter)."""

    __slots__ = ("_clock", "_started")

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started = clock()

    def elapsed_ms(self) -> float:
        """Milliseconds since it was made, to a tenth."""
        return round((self._clock() - self._started) * 1000, 1)
