"""JSON-lines logging: one object per record, with the record's context fields."""

from __future__ import annotations

import json
import logging
import sys
import uuid

import pytest

from steno.common.logs import JsonFormatter


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
