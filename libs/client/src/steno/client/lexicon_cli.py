"""``steno lexicon …``: create, list, read, update and delete lexicons from the shell.

Entries come from ``--entry 'PHRASE=VARIANT|VARIANT'`` options or a JSON ``--file``. The file
is either a list of ``{"phrase", "sounds_like"}`` objects, or an object with ``entries`` and
optionally ``name`` and ``language``: the shape ``steno lexicon get`` prints, so a lexicon can
be saved, edited and sent back with ``update --file``.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steno.client.commands import CommandGroup, Subcommands
from steno.client.completion import files
from steno.client.output import add_json_option, to_json
from steno.client.sdk import StenoClient

# Keys of a lexicon file the server assigns: present when the file came from `lexicon get`,
# so that file can be sent back as it is. Only `version` is used, as the version the edit
# was made from.
_SERVER_KEYS = frozenset({"lexicon_id", "version", "create_time", "update_time"})


class InvalidInput(Exception):
    """An option or a file the user gave cannot be used; the message says why."""


@dataclass(frozen=True)
class LexiconInput:
    """What the command line and ``--file`` say about a lexicon; None where they are silent."""

    name: str | None = None
    language: str | None = None
    entries: dict[str, list[str]] | None = None
    # The version the file was read at (what `steno lexicon get` printed), so that an
    # update from an edited copy is refused if the lexicon changed since.
    version: int = 0


def add_commands(subcommands: Subcommands, connection: argparse.ArgumentParser) -> None:
    """Registers ``steno lexicon`` and its subcommands; ``connection`` holds ``--server``."""
    lexicon = subcommands.add_parser("lexicon", help="manage lexicons (words to get right)")
    actions = CommandGroup(lexicon.add_subparsers(required=True, metavar="ACTION"), connection)

    create = actions.add("create", _create, "create a lexicon and print its id")
    create.add_argument(
        "name", nargs="?", help='what to call the lexicon; default: the --file\'s "name"'
    )
    create.add_argument("--language", default=None, help="BCP-47 code; default: any language")
    _add_entry_options(create, required=True)

    listing = actions.add("list", _list, "list lexicons, newest first", limit=50)
    add_json_option(listing, "one lexicon a line")

    get = actions.add("get", _get, "print one lexicon as JSON", of="lexicon_id")
    add_json_option(get, "the lexicon (as without --json)")

    update = actions.add(
        "update",
        _update,
        "change a lexicon's name, language or entries (replacing them all) and print it",
        of="lexicon_id",
    )
    update.add_argument("--name", default=None, help="a new name")
    update.add_argument("--language", default=None, help="BCP-47 code; '' for any language")
    _add_entry_options(update, required=False)
    update.add_argument(
        "--version",
        type=int,
        default=0,
        help="apply only if the lexicon is still at this version (else ABORTED)",
    )

    actions.add("delete", _delete, "delete a lexicon", of="lexicon_id")


def _add_entry_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    source = parser.add_mutually_exclusive_group(required=required)
    files(
        source.add_argument(
            "--file",
            type=Path,
            help="JSON: a list of {phrase, sounds_like}, or an object with entries, name, language",
        )
    )
    source.add_argument(
        "--entry",
        action="append",
        metavar="'PHRASE=VARIANT|VARIANT'",
        help="one entry; repeat for more (e.g. 'Kubernetes=cooper netties|kuber netes')",
    )


def _create(args: argparse.Namespace, client: StenoClient) -> None:
    given = _lexicon_input(args)
    if not given.name:
        raise InvalidInput('give the lexicon a NAME, or a --file with a "name"')
    created = client.create_lexicon(given.name, given.entries or {}, language=given.language or "")
    print(created.lexicon_id)


def _list(args: argparse.Namespace, client: StenoClient) -> None:
    lexicons = client.iter_lexicons(page_size=min(args.limit, 100))
    for lexicon in itertools.islice(lexicons, args.limit):
        if args.json:
            print(to_json(lexicon, one_line=True))
        else:
            version = f"v{lexicon.version}"
            count = f"{len(lexicon.entries)} entries"
            language = lexicon.language or "any"
            print(f"{lexicon.lexicon_id}  {version:<4}  {language:<6}  {count:<12}  {lexicon.name}")


def _get(args: argparse.Namespace, client: StenoClient) -> None:
    # What --file reads back: proto field names, empty fields included.
    print(to_json(client.get_lexicon(args.lexicon_id)))


def _update(args: argparse.Namespace, client: StenoClient) -> None:
    given = _lexicon_input(args)
    if (given.name, given.language, given.entries) == (None, None, None):
        raise InvalidInput("nothing to update: give --name, --language, --file or --entry")
    updated = client.update_lexicon(
        args.lexicon_id,
        name=given.name,
        language=given.language,
        entries=given.entries,
        version=args.version or given.version,
    )
    print(to_json(updated))


def _delete(args: argparse.Namespace, client: StenoClient) -> None:
    client.delete_lexicon(args.lexicon_id)


def _lexicon_input(args: argparse.Namespace) -> LexiconInput:
    """The options given, over what ``--file`` says (options win)."""
    from_file = read_lexicon_file(args.file) if args.file else LexiconInput()
    entries = parse_entries(args.entry) if args.entry else from_file.entries
    return LexiconInput(
        name=args.name or from_file.name,
        language=args.language if args.language is not None else from_file.language,
        entries=entries,
        version=from_file.version,
    )


def parse_entries(options: list[str]) -> dict[str, list[str]]:
    """``--entry`` values, each ``PHRASE=VARIANT|VARIANT`` (or a bare ``PHRASE``)."""
    entries: dict[str, list[str]] = {}
    for option in options:
        phrase, _, variants = option.partition("=")
        phrase = phrase.strip()
        if not phrase:
            raise InvalidInput(f"--entry {option!r}: the phrase before '=' is empty")
        sounds_like = [variant.strip() for variant in variants.split("|")] if variants else []
        if "" in sounds_like:
            raise InvalidInput(f"--entry {option!r}: a variant between '|' is empty")
        _add_entry(entries, phrase, sounds_like, f"--entry {option!r}")
    return entries


def read_lexicon_file(path: Path) -> LexiconInput:
    """A lexicon JSON file (see the module docstring); InvalidInput says what is wrong."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{path} is not JSON: {exc}") from exc
    if isinstance(document, list):
        return LexiconInput(entries=_file_entries(document, path))
    if not isinstance(document, dict):
        raise InvalidInput(f"{path}: expected a list of entries or an object with entries")
    unknown = sorted(set(document) - {"name", "language", "entries"} - _SERVER_KEYS)
    if unknown:
        raise InvalidInput(f"{path}: unknown keys {', '.join(unknown)}")
    if "entries" not in document:
        raise InvalidInput(f'{path}: the object has no "entries"')
    return LexiconInput(
        name=_optional_string(document, "name", path),
        language=_optional_string(document, "language", path),
        entries=_file_entries(document["entries"], path),
        version=_version(document, path),
    )


def _file_entries(items: Any, path: Path) -> dict[str, list[str]]:
    if not isinstance(items, list):
        raise InvalidInput(f'{path}: "entries" must be a list')
    entries: dict[str, list[str]] = {}
    for index, item in enumerate(items):
        where = f"{path}: entry {index}"
        if not isinstance(item, dict) or set(item) - {"phrase", "sounds_like"}:
            raise InvalidInput(f'{where} must be an object with "phrase" and "sounds_like"')
        phrase = item.get("phrase")
        sounds_like = item.get("sounds_like", [])
        if not isinstance(phrase, str) or not phrase.strip():
            raise InvalidInput(f'{where}: "phrase" must be a non-empty string')
        if not isinstance(sounds_like, list) or not all(isinstance(s, str) for s in sounds_like):
            raise InvalidInput(f'{where}: "sounds_like" must be a list of strings')
        _add_entry(entries, phrase.strip(), sounds_like, where)
    return entries


def _add_entry(
    entries: dict[str, list[str]], phrase: str, sounds_like: list[str], where: str
) -> None:
    # Twice the same phrase is almost certainly a mistake; merging could hide which is meant.
    if phrase in entries:
        raise InvalidInput(f"{where}: the phrase {phrase!r} is given twice")
    entries[phrase] = sounds_like


def _version(document: Mapping[str, Any], path: Path) -> int:
    """The file's ``version``: a number, or the string the JSON form of an int64 is."""
    value = document.get("version", 0)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f'{path}: "version" must be a whole number') from None


def _optional_string(document: Mapping[str, Any], key: str, path: Path) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f'{path}: "{key}" must be a string')
    return value
