"""The ``steno`` command.

Client subcommands come from :mod:`steno.client`. ``steno dev`` and ``steno migrate``
import the services only when run, so a client-only install never needs them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from steno.client.cli import add_commands, run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="steno", description=__doc__.splitlines()[0])
    subcommands = parser.add_subparsers(required=True, metavar="COMMAND")

    dev = subcommands.add_parser(
        "dev", help="run gateway, transcriber and janitor in one process on embedded defaults"
    )
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=None, help="default: STENO_GRPC_PORT or 50051")
    dev.set_defaults(command=_dev)

    migrate = subcommands.add_parser("migrate", help="upgrade the database schema to the latest")
    migrate.set_defaults(command=_migrate)

    add_commands(subcommands)
    args = parser.parse_args(argv)
    if args.command in (_dev, _migrate):
        return int(args.command(args))
    return run(args)


def _dev(args: argparse.Namespace) -> int:
    try:
        from steno.cli.dev import main as dev_main
    except ImportError as exc:
        sys.exit(f"steno dev needs the services: install steno[server] ({exc})")
    return dev_main(args.host, args.port)


def _migrate(args: argparse.Namespace) -> int:
    try:
        from steno.common.db.migrate import upgrade
        from steno.common.logs import configure_logging
        from steno.common.settings import Settings
    except ImportError as exc:
        sys.exit(f"steno migrate needs the server parts: install steno[server] ({exc})")

    settings = Settings()
    configure_logging(settings.log_level)
    upgrade(settings.database_url_or_default)
    return 0


if __name__ == "__main__":
    sys.exit(main())
