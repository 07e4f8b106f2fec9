"""The client half of the ``steno`` command: ``upload``, ``jobs`` and ``job``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import timedelta

import grpc
from google.protobuf.json_format import MessageToJson

from steno.client.sdk import DEFAULT_SERVER, StenoClient
from steno.v1 import job_pb2

Command = Callable[[argparse.Namespace], int]


def add_commands(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers the client subcommands on the ``steno`` parser."""
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument(
        "--server",
        default=os.environ.get("STENO_SERVER", DEFAULT_SERVER),
        help="gateway address (env STENO_SERVER; default %(default)s)",
    )

    upload = subcommands.add_parser(
        "upload", parents=[connection], help="upload an audio file and queue its transcription"
    )
    upload.add_argument("file")
    upload.add_argument("--language", default="", help="BCP-47 code; default: detect")
    upload.add_argument("--engine", default="", help="local or openai; default: the server's")
    upload.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    upload.add_argument(
        "--retention-hours",
        type=float,
        default=None,
        help="keep the audio this long after the job ends; default: the server's",
    )
    upload.add_argument(
        "--request-id", default="", help="idempotency key: a retry with it gets the same job"
    )
    upload.add_argument("--wait", action="store_true", help="wait and print the transcript")
    upload.add_argument("--timeout", type=float, default=None, help="seconds to --wait at most")
    upload.set_defaults(command=_upload)

    jobs = subcommands.add_parser("jobs", parents=[connection], help="list jobs, newest first")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.set_defaults(command=_jobs)

    job = subcommands.add_parser("job", parents=[connection], help="print one job as JSON")
    job.add_argument("job_id")
    job.set_defaults(command=_job)


def run(args: argparse.Namespace) -> int:
    """Runs a client subcommand; errors become a one-line message and exit status 1."""
    command: Command = args.command
    try:
        return command(args)
    except grpc.RpcError as exc:
        print(f"steno: {exc.code().name}: {exc.details()}", file=sys.stderr)
    except (OSError, TimeoutError) as exc:
        print(f"steno: {exc}", file=sys.stderr)
    return 1


def _client(args: argparse.Namespace) -> StenoClient:
    return StenoClient(args.server, api_key=os.environ.get("STENO_API_KEY") or None)


def _upload(args: argparse.Namespace) -> int:
    labels = dict(label.split("=", 1) for label in args.label if "=" in label)
    with _client(args) as client:
        retention = None if args.retention_hours is None else timedelta(hours=args.retention_hours)
        job = client.upload(
            args.file,
            language=args.language,
            engine=args.engine,
            labels=labels,
            audio_retention=retention,
            request_id=args.request_id,
        )
        if not args.wait:
            print(job.job_id)
            return 0
        print(f"job {job.job_id} queued; waiting…", file=sys.stderr)
        job = client.wait(job.job_id, timeout=args.timeout)
    if job.state != job_pb2.JOB_STATE_COMPLETED:
        print(f"steno: job {job.job_id} {_state(job)}: {job.error.message}", file=sys.stderr)
        return 1
    print(job.processed_text or job.original_text)
    return 0


def _jobs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for index, job in enumerate(client.iter_jobs(page_size=min(args.limit, 100))):
            if index == args.limit:
                break
            created = job.create_time.ToDatetime().isoformat(timespec="seconds")
            print(f"{job.job_id}  {_state(job):<10}  {created}  {job.filename}")
    return 0


def _job(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(MessageToJson(client.get_job(args.job_id)))
    return 0


def _state(job: job_pb2.Job) -> str:
    return job_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_")
