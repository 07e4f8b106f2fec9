"""What every ``steno`` client subcommand is: a handler taking the parsed arguments and a
connected client, registered with the options that say where the server is."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from steno.client.sdk import StenoClient

# A subcommand: the parsed arguments and a connected client in, the exit status out (None
# for a command that cannot fail but by raising, which is 0).
Command = Callable[[argparse.Namespace, StenoClient], int | None]
# Where subcommands are registered (argparse's private type, so named only for typing).
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CommandGroup:
    """Registers subcommands that each take the connection options and run one handler."""

    def __init__(self, subcommands: Subcommands, connection: argparse.ArgumentParser) -> None:
        self._subcommands = subcommands
        self._connection = connection

    def add(
        self,
        name: str,
        command: Command,
        help: str,
        *,
        of: str | None = None,
        limit: int | None = None,
    ) -> argparse.ArgumentParser:
        """The parser of a new subcommand ``name`` that runs ``command``, for its options.
        ``of`` names the resource id it acts on, its one positional argument; a listing
        gets ``--limit``, the most items it prints, by default ``limit``."""
        parser = self._subcommands.add_parser(name, parents=[self._connection], help=help)
        parser.set_defaults(command=command)
        if of is not None:
            thing = of.removesuffix("_id")
            parser.add_argument(of, metavar="ID", help=f"the {thing}'s id")
        if limit is not None:
            parser.add_argument(
                "--limit",
                type=int,
                default=limit,
                metavar="N",
                help="print at most N (default %(default)s)",
            )
        return parser
