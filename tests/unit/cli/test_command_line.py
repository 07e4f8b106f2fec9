"""The ``steno`` command's own surface: help for every subcommand and option, ``--version``,
the shell completion scripts, and ``--json`` spellings."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from steno.cli import build_parser, main

SUBCOMMANDS = ["upload", "jobs", "job", "watch", "transcript", "lexicon", "keys", "tenants"]


def every_parser(
    parser: argparse.ArgumentParser, path: str = "steno"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``parser`` and every subcommand's parser under it, each with its command line; a
    subcommand without help fails here."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                assert helps.get(name), f"`{path} {name}` has no help"
                yield from every_parser(subparser, f"{path} {name}")


def test_every_subcommand_option_and_argument_has_help() -> None:
    parsers = dict(every_parser(build_parser()))
    assert {f"steno {name}" for name in SUBCOMMANDS} <= set(parsers)
    missing = [
        f"`{path}` {'/'.join(action.option_strings) or action.dest}"
        for path, parser in parsers.items()
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction)
        and action.help in (None, "", argparse.SUPPRESS)
    ]
    assert missing == []


def test_version_prints_the_installed_distributions_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "steno.cli", "--version"], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"steno {version('steno')}\n", "")


@pytest.mark.parametrize(
    ("shell", "options"),
    [("bash", ["--json", "--server"]), ("zsh", ["--json", "--server"]), ("tcsh", [])],
)
def test_completion_scripts_know_every_subcommand(
    shell: str, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", shell]) == 0

    script = capsys.readouterr().out
    # shtab's tcsh script completes subcommands only.
    for name in [*SUBCOMMANDS, "completion", "create", "revoke", "set-quota", *options]:
        assert name in script, f"{name} missing from the {shell} script"


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["steno", "up"], ["upload"]),
        (["steno", "lexicon", ""], ["create", "list", "get", "update", "delete"]),
        (["steno", "jobs", "--js"], ["--json"]),
        (["steno", "completion", "z"], ["zsh"]),
    ],
)
def test_bash_completes_with_the_script(
    words: list[str], expected: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    main(["completion", "bash"])
    script = tmp_path / "steno.bash"
    script.write_text(capsys.readouterr().out)
    # What bash does on TAB: the words so far, and the function the script registered.
    line = " ".join(shlex.quote(word) for word in words)
    completing = (
        f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _shtab_steno; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )

    done = subprocess.run(["bash", "-c", completing], capture_output=True, text=True)

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.split() == expected


def test_an_unknown_shell_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["completion", "cmd.exe"])

    assert exit.value.code == 2
    assert "invalid choice: 'cmd.exe'" in capsys.readouterr().err


def test_transcript_json_is_the_json_format() -> None:
    parser = build_parser()
    assert parser.parse_args(["transcript", "ID", "--json"]).format == "json"
    assert parser.parse_args(["transcript", "ID"]).format == "text"
    with pytest.raises(SystemExit):
        parser.parse_args(["transcript", "ID", "--json", "--format", "srt"])
