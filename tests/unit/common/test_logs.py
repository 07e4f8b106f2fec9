"""Logging: one JSON object (or one text line) per record, with the record's context
fields and the active span's trace ids; durations from a stopwatch."""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid

import pytest
from opentelemetry.sdk.trace import TracerProvider

from steno.common.logs import (
    JsonFormatter,
    LogFormat,
    Stopwatch,
    TextFormatter,
    TraceContext,
    configure_logging,
)


def record(
    message: str,
    *args: object,
    level: int = logging.INFO,
    extra: dict[str, object] | None = None,
    exc_info: bool = False,
) -> logging.LogRecord:
    """A record made the way Logger.info() makes it."""
    logger = logging.getLogger("steno.test")
    info = None
    if exc_info:
        try:
            raise RuntimeError("decoder crashed")
        except RuntimeError:
            info = sys.exc_info()
    return logger.makeRecord(logger.name, level, __file__, 1, message, args, info, extra=extra)


def test_one_json_object_with_message_level_and_logger() -> None:
    line = JsonFormatter().format(record("job %s finished", "abc", level=logging.WARNING))

    entry = json.loads(line)
    assert entry["message"] == "job abc finished"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "steno.test"
    assert entry["time"].endswith("+00:00")
    assert "\n" not in line


def test_extra_fields_are_top_level_keys() -> None:
    job_id = uuid.uuid4()
    entry = json.loads(
        JsonFormatter().format(
            record("job finished", extra={"job_id": job_id, "state": "COMPLETED", "n": 3})
        )
    )

    assert entry["job_id"] == str(job_id)
    assert entry["state"] == "COMPLETED"
    assert entry["n"] == 3


def test_standard_record_attributes_are_left_out() -> None:
    entry = json.loads(JsonFormatter().format(record("job finished")))
    assert set(entry) == {"time", "level", "logger", "message"}


def test_exception_text_is_included_on_one_line() -> None:
    line = JsonFormatter().format(record("job crashed", exc_info=True))

    entry = json.loads(line)
    assert "Traceback" in entry["exception"]
    assert "RuntimeError: decoder crashed" in entry["exception"]
    assert "\n" not in line


def test_through_a_real_logger(caplog: pytest.LogCaptureFixture) -> None:
    """What ``log.info(..., extra=...)`` in the services produces."""
    with caplog.at_level(logging.INFO, logger="steno.test"):
        logging.getLogger("steno.test").info("upload accepted", extra={"job_id": "j-1"})

    [captured] = caplog.records
    entry = json.loads(JsonFormatter().format(captured))
    assert (entry["message"], entry["job_id"], entry["level"]) == ("upload accepted", "j-1", "INFO")


def test_a_record_made_in_a_span_carries_its_trace_and_span_ids() -> None:
    tracing = TracerProvider()
    with tracing.get_tracer("test").start_as_current_span("job") as span:
        made = record("job started")
        assert TraceContext().filter(made)
    entry = json.loads(JsonFormatter().format(made))

    context = span.get_span_context()
    assert entry["trace_id"] == f"{context.trace_id:032x}"
    assert entry["span_id"] == f"{context.span_id:016x}"
    assert len(entry["trace_id"]) == 32 and len(entry["span_id"]) == 16


def test_a_record_made_outside_any_span_has_no_trace_fields() -> None:
    made = record("gateway listening")
    assert TraceContext().filter(made)
    assert set(json.loads(JsonFormatter().format(made))) == {"time", "level", "logger", "message"}


def test_text_lines_give_time_level_logger_message_then_the_fields() -> None:
    made = record(
        "job finished",
        level=logging.WARNING,
        extra={"job_id": "j-1", "state": "FAILED", "error": 'no "audio" here', "n": 3},
    )
    line = TextFormatter().format(made)

    time, level, logger, rest = line.split(maxsplit=3)
    assert time.endswith("+00:00") and (level, logger) == ("WARNING", "steno.test:")
    assert rest == 'job finished job_id=j-1 state=FAILED error="no \\"audio\\" here" n=3'


def test_text_lines_put_a_traceback_on_the_lines_after() -> None:
    first, *traceback = TextFormatter().format(record("job crashed", exc_info=True)).splitlines()
    assert first.endswith("steno.test: job crashed")
    assert traceback[0].startswith("Traceback") and traceback[-1] == "RuntimeError: decoder crashed"


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_configure_logging_writes_the_chosen_format_with_trace_ids_to_stderr(
    log_format: LogFormat, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("INFO", log_format)
        with TracerProvider().get_tracer("test").start_as_current_span("upload") as span:
            logging.getLogger("steno.test").info("upload accepted", extra={"job_id": "j-1"})
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)

    out, err = capsys.readouterr()
    trace_id = f"{span.get_span_context().trace_id:032x}"
    assert out == ""
    if log_format == "json":
        assert json.loads(err)["trace_id"] == trace_id
    else:
        fields = rf"upload accepted job_id=j-1 trace_id={trace_id} span_id=[0-9a-f]{{16}}"
        assert re.search(fields + "$", err.rstrip("\n")), err


def test_a_stopwatch_gives_the_milliseconds_since_it_was_made() -> None:
    readings = iter([100.0, 100.25, 101.00004])
    stopwatch = Stopwatch(clock=lambda: next(readings))

    assert stopwatch.elapsed_ms() == 250.0
    assert stopwatch.elapsed_ms() == 1000.0
