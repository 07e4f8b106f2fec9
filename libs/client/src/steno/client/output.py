"""What the ``steno`` command prints for scripts to read.

``--json`` prints messages as proto JSON with the proto's own snake_case field names, as
grpcurl prints them, every field present (so a script need not know a field's default):
one indented object for a command about one thing, one object a line for a listing or a
stream (``jq`` reads both). A reader that stops reading early (``steno jobs | head -1``)
ends the command quietly: it had all it wanted.
"""

from __future__ import annotations

import argparse
import os
import sys

from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message

from steno.v1 import job_pb2


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json``: print ``what`` as proto JSON instead of text for people."""
    parser.add_argument(
        "--json", action="store_true", help=f"print JSON with the proto's field names: {what}"
    )


def to_json(message: Message, *, one_line: bool = False) -> str:
    """``message`` as proto JSON: indented, or on ``one_line`` for listings and streams."""
    return MessageToJson(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        indent=None if one_line else 2,
    )


def state_name(job: job_pb2.Job) -> str:
    """The job's state as people read it: ``PROCESSING`` for ``JOB_STATE_PROCESSING``."""
    return job_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_")


def discard_stdout() -> None:
    """After a write to stdout failed with a closed pipe: sends what is left to
    ``/dev/null``, as the Python documentation says, since Python flushes stdout once more
    at exit and would report that failure too."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
