"""The ``steno`` command.

Client subcommands come from :mod:`steno.client`. ``steno dev`` and ``steno migrate``
import the services only when run, so a client-only install never needs them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

from steno.client.cli import add_commands, run
from steno.client.completion import add_completion_command
from steno.client.output import discard_stdout


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``steno ARGS``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status = int(args.command(args)) if getattr(args, "local", False) else run(args)
        # What is still buffered goes now, so a reader gone shows here, not at exit.
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader (`steno jobs | head -1`) stopped reading: it had what it wanted.
        discard_stdout()
        return 0
    except KeyboardInterrupt:
        # Ctrl-C: the person asked for it to stop, no traceback needed; 128 + SIGINT, as
        # shells report it.
        return 130
    return status


def build_parser() -> argparse.ArgumentParser:
    """The ``steno`` command's parser, every subcommand on it."""
    parser = argparse.ArgumentParser(prog="steno", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('steno')}")
    subcommands = parser.add_subparsers(required=True, metavar="COMMAND")

    dev = subcommands.add_parser(
        "dev", help="run gateway, transcriber and janitor in one process on embedded defaults"
    )
    dev.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    dev.add_argument(
        "--port", type=int, default=None, help="gRPC port (default: STENO_GRPC_PORT or 50051)"
    )
    dev.set_defaults(command=_dev, local=True)

    migrate = subcommands.add_parser("migrate", help="upgrade the database schema to the latest")
    migrate.add_argument(
        "--wait",
        type=_seconds,
        metavar="SECONDS",
        help="do not migrate: wait up to SECONDS for the schema to be at the latest revision "
        "(someone else migrates; e.g. a Kubernetes init container), exit non-zero if it is not",
    )
    migrate.set_defaults(command=_migrate, local=True)
    _add_operator_commands(subcommands)

    add_commands(subcommands)
    add_completion_command(subcommands, parser)
    return parser


def _add_operator_commands(subcommands: argparse._SubParsersAction[Any]) -> None:
    """The commands that work on the configured database itself, where the server parts
    are installed (a client-only install has none of them)."""
    try:
        from steno.cli.keys import add_keys_command
        from steno.cli.tenants import add_tenants_command
    except ImportError:
        return
    add_keys_command(subcommands)
    add_tenants_command(subcommands)


def _dev(args: argparse.Namespace) -> int:
    try:
        from steno.cli.dev import main as dev_main
    except ImportError as exc:
        sys.exit(f"steno dev needs the services: install steno[server] ({exc})")
    return dev_main(args.host, args.port)


def _seconds(value: str) -> float:
    seconds = float(value)
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds >= 0")
    return seconds


def _migrate(args: argparse.Namespace) -> int:
    try:
        from steno.common.db.migrate import SchemaNotReady, upgrade, wait_for_head
        from steno.common.logs import configure_logging
        from steno.common.settings import ServiceSettings
    except ImportError as exc:
        sys.exit(f"steno migrate needs the server parts: install steno[server] ({exc})")

    # The settings every service has: the database (and the data directory of SQLite's).
    settings = ServiceSettings()
    configure_logging(settings.log_level, settings.log_format)
    if args.wait is None:
        upgrade(settings.database_url)
        return 0
    # Alembic would say which dialect it found on every look.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    try:
        head = asyncio.run(wait_for_head(settings.database_url, args.wait))
    except SchemaNotReady as exc:
        sys.exit(f"steno migrate --wait: {exc}")
    print(f"the database schema is at {head}, the latest revision")
    return 0


if __name__ == "__main__":
    sys.exit(main())
