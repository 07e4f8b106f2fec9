"""The client half of the ``steno`` command: ``upload``, ``jobs``, ``job``, ``watch``,
``cancel``, ``delete``, ``transcript`` and (from :mod:`steno.client.lexicon_cli`)
``lexicon``."""

from __future__ import annotations

import argparse
import itertools
import sys
from datetime import timedelta
from pathlib import Path

import grpc
from rich.console import Console

from steno.client import lexicon_cli, progress
from steno.client.channels import client_tls
from steno.client.commands import Command, CommandGroup, Subcommands
from steno.client.completion import files
from steno.client.credentials import find_api_key
from steno.client.environment import client_environment
from steno.client.lexicon_cli import InvalidInput
from steno.client.output import add_json_option, state_name, to_json
from steno.client.sdk import DEFAULT_SERVER, TRANSCRIPT_FORMATS, StenoClient
from steno.v1 import job_pb2


def add_commands(subcommands: Subcommands) -> None:
    """Registers the client subcommands on the ``steno`` parser."""
    environ = client_environment()
    connection = argparse.ArgumentParser(add_help=False)
    connection.set_defaults(environ=environ)
    connection.add_argument(
        "--server",
        default=environ.get("STENO_SERVER", DEFAULT_SERVER),
        help="gateway address (env STENO_SERVER; default %(default)s)",
    )
    connection.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="API key (default: env STENO_API_KEY, else $STENO_DATA_DIR/api-key, which "
        "`steno dev` writes)",
    )
    connection.add_argument(
        "--tls", action="store_true", help="TLS to the gateway (env STENO_TLS=true)"
    )
    files(
        connection.add_argument(
            "--ca",
            metavar="FILE",
            help="CA certificate the gateway's is signed by, PEM; implies "
            "--tls (env STENO_TLS_CA_FILE; default: the system's CAs)",
        )
    )
    files(
        connection.add_argument(
            "--cert",
            metavar="FILE",
            help="client certificate, PEM, for a gateway that requires "
            "one (env STENO_TLS_CLIENT_CERT_FILE)",
        )
    )
    files(
        connection.add_argument(
            "--key",
            metavar="FILE",
            help="the client certificate's key, PEM (env STENO_TLS_CLIENT_KEY_FILE)",
        )
    )
    commands = CommandGroup(subcommands, connection)

    upload = commands.add("upload", _upload, "upload an audio file and queue its transcription")
    files(upload.add_argument("file", help="the audio file to transcribe"))
    upload.add_argument("--language", default="", help="BCP-47 code; default: detect")
    upload.add_argument("--engine", default="", help="local or openai; default: the server's")
    upload.add_argument("--lexicon", default="", metavar="ID", help="apply this lexicon")
    upload.add_argument(
        "--label",
        action="append",
        default=[],
        type=_label,
        metavar="KEY=VALUE",
        help="a label to put on the job; repeat for more",
    )
    upload.add_argument(
        "--retention-hours",
        type=float,
        default=None,
        metavar="HOURS",
        help="keep the audio this long after the job ends; default: the server's",
    )
    upload.add_argument(
        "--request-id",
        default="",
        metavar="ID",
        help="idempotency key: a retry with it gets the same job (default: a new UUID)",
    )
    upload.add_argument(
        "--webhook",
        default="",
        metavar="URL",
        help="POST a signed event to this http(s) URL when the job ends",
    )
    upload.add_argument("--wait", action="store_true", help="wait and print the transcript")
    upload.add_argument(
        "--format",
        choices=TRANSCRIPT_FORMATS,
        default=None,
        help="print the transcript in this format (implies --wait; default text)",
    )
    upload.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS", help="--wait this long at most"
    )

    jobs = commands.add("jobs", _jobs, "list jobs, newest first", limit=20)
    add_json_option(jobs, "one job a line")

    job = commands.add("job", _job, "print one job as JSON", of="job_id")
    add_json_option(job, "the job (as without --json)")

    watch = commands.add(
        "watch",
        _watch,
        "follow a job: a line per change of state or progress, until it ends "
        "(exit status 0 once COMPLETED, 1 otherwise)",
        of="job_id",
    )
    watch.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS", help="watch this long at most"
    )
    add_json_option(watch, "the job on every change, one a line")

    commands.add("cancel", _cancel, "cancel a queued or running job (the audio stays)", of="job_id")

    commands.add("delete", _delete, "delete a job now: its audio and its transcript", of="job_id")

    transcript = commands.add(
        "transcript", _transcript, "print the transcript of a completed job", of="job_id"
    )
    form = transcript.add_mutually_exclusive_group()
    form.add_argument(
        "--format",
        choices=TRANSCRIPT_FORMATS,
        default="text",
        help="plain text, SubRip or WebVTT subtitles, or JSON with timed segments "
        "(default %(default)s)",
    )
    form.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        help="the same as --format json",
    )
    files(
        transcript.add_argument(
            "--output", "-o", type=Path, default=None, metavar="FILE", help="write it here instead"
        )
    )

    lexicon_cli.add_commands(subcommands, connection)


def run(args: argparse.Namespace) -> int:
    """Runs a client subcommand; errors become a one-line message and exit status 1."""
    command: Command = args.command
    try:
        tls = client_tls(args.tls, args.ca, args.cert, args.key, environ=args.environ)
        api_key = find_api_key(args.api_key, args.environ)
        with StenoClient(args.server, api_key=api_key, tls=tls) as client:
            return command(args, client) or 0
    except grpc.RpcError as exc:
        print(f"steno: {exc.code().name}: {exc.details()}", file=sys.stderr)
    except BrokenPipeError:
        raise  # stdout's reader is gone: `steno` ends quietly (see steno.client.output)
    except (OSError, TimeoutError, InvalidInput) as exc:
        print(f"steno: {exc}", file=sys.stderr)
    return 1


def _label(value: str) -> tuple[str, str]:
    key, sep, text = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{value!r} is not KEY=VALUE")
    return key, text


def _upload(args: argparse.Namespace, client: StenoClient) -> int:
    retention = None if args.retention_hours is None else timedelta(hours=args.retention_hours)
    terminal = progress.terminal()
    with progress.upload_bar(terminal, Path(args.file)) as sent:
        job = client.upload(
            args.file,
            language=args.language,
            engine=args.engine,
            lexicon_id=args.lexicon,
            labels=dict(args.label),
            audio_retention=retention,
            request_id=args.request_id,
            webhook_url=args.webhook,
            progress=sent,
        )
    if not (args.wait or args.format):
        print(job.job_id)
        return 0
    job = _until_ended(client, job.job_id, args.timeout, terminal)
    if job.state != job_pb2.JOB_STATE_COMPLETED:
        print(_failure(job), file=sys.stderr)
        return 1
    for warning in job.warnings:
        print(f"steno: warning: {warning}", file=sys.stderr)
    if args.format in (None, "text"):
        # The job already holds the text; no second call needed for it.
        _write(job.processed_text or job.original_text, None)
    else:
        _write(client.get_transcript(job.job_id, args.format).content, None)
    return 0


def _until_ended(
    client: StenoClient, job_id: str, timeout: float | None, terminal: Console | None
) -> job_pb2.Job:
    """The job once it has ended. At a terminal, a live line follows it as it changes;
    otherwise stderr says it is waited for once, as scripts have always seen it."""
    if terminal is None:
        print(f"job {job_id} queued; waiting…", file=sys.stderr)
        return client.wait(job_id, timeout=timeout)
    with progress.job_line(terminal, job_id) as seen:
        for job in client.watch(job_id, timeout=timeout):
            seen(job)
    return job


def _jobs(args: argparse.Namespace, client: StenoClient) -> None:
    for job in itertools.islice(client.iter_jobs(page_size=min(args.limit, 100)), args.limit):
        if args.json:
            print(to_json(job, one_line=True))
        else:
            created = job.create_time.ToDatetime().isoformat(timespec="seconds")
            print(f"{job.job_id}  {state_name(job):<10}  {created}  {job.filename}")


def _job(args: argparse.Namespace, client: StenoClient) -> None:
    print(to_json(client.get_job(args.job_id)))


def _watch(args: argparse.Namespace, client: StenoClient) -> int:
    job = None
    with progress.job_line(progress.terminal(), args.job_id) as seen:
        for job in client.watch(args.job_id, timeout=args.timeout):
            seen(job)
            if args.json:
                print(to_json(job, one_line=True), flush=True)
            else:
                print(f"{state_name(job):<10}  {job.progress:4.0%}", flush=True)
    if job is None or job.state != job_pb2.JOB_STATE_COMPLETED:
        if job is not None and job.error.message:
            print(_failure(job), file=sys.stderr)
        return 1
    return 0


def _failure(job: job_pb2.Job) -> str:
    """Why a job did not complete, as the one line of an error."""
    return f"steno: job {job.job_id} {state_name(job)}: {job.error.message}"


def _cancel(args: argparse.Namespace, client: StenoClient) -> None:
    job = client.cancel_job(args.job_id)
    print(f"{job.job_id}  {state_name(job)}")


def _delete(args: argparse.Namespace, client: StenoClient) -> None:
    client.delete_job(args.job_id)
    print(f"{args.job_id}  deleted")


def _transcript(args: argparse.Namespace, client: StenoClient) -> None:
    _write(client.get_transcript(args.job_id, args.format).content, args.output)


def _write(content: str, output: Path | None) -> None:
    """The transcript to ``output`` as it came, or to stdout ending in one newline."""
    if output is not None:
        output.write_text(content, encoding="utf-8")
    else:
        print(content, end="" if content.endswith("\n") else "\n")
