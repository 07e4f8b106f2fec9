"""What every ``steno`` client subcommand is: a handler taking the parsed arguments and a
connected client, registered with the options that say where the server is."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from steno.client.sdk import StenoClient

# A subcommand: the parsed arguments and a connected client in, the exit status out.
Command = Callable[[argparse.Namespace, StenoClient], int]
# Where subcommands are registered (argparse's private type, so named only for typing).
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CommandGroup:
    """Registers subcommands that each take the connection options and run one handler."""

    def __init__(self, subcommands: Subcommands, connection: argparse.ArgumentParser) -> None:
        self._subcommands = subcommands
        self._connection = connection

    def add(self, name: str, command: Command, help: str) -> argparse.ArgumentParser:
        """The parser of a new subcommand ``name`` that runs ``command``, for its options."""
        parser = self._subcommands.add_parser(name, parents=[self._connection], help=help)
        parser.set_defaults(command=command)
        return parser
