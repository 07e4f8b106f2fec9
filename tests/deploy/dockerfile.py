"""Reading a Dockerfile without Docker: its stages, instructions and what they copy."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int

    def flags_and_words(self) -> tuple[dict[str, list[str]], list[str]]:
        """The leading ``--flag=value`` options (a flag may repeat) and the words after them."""
        if self.args.lstrip().startswith("["):
            return {}, json.loads(self.args)
        words = shlex.split(self.args)
        flags: dict[str, list[str]] = {}
        while words and words[0].startswith("--"):
            name, _, value = words.pop(0)[2:].partition("=")
            flags.setdefault(name, []).append(value)
        return flags, words

    def env(self) -> dict[str, str]:
        """What an ENV instruction sets."""
        words = shlex.split(self.args)
        if "=" not in words[0]:  # the legacy `ENV KEY value` form
            return {words[0]: " ".join(words[1:])}
        return dict(word.partition("=")[::2] for word in words)

    def commands(self) -> list[list[str]]:
        """A RUN instruction's commands, split at ``&&``."""
        _, words = self.flags_and_words()
        found: list[list[str]] = [[]]
        for word in words:
            if word == "&&":
                found.append([])
            else:
                found[-1].append(word)
        return found


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        return {k: v for i in self.all("ENV") for k, v in i.env().items()}

    def commands(self) -> list[list[str]]:
        """Every command the stage's RUN instructions run."""
        return [command for i in self.all("RUN") for command in i.commands()]

    def uv_syncs(self) -> list[list[str]]:
        return [c for c in self.commands() if c[:2] == ["uv", "sync"]]


@dataclass(frozen=True)
class Dockerfile:
    service: str
    path: Path
    stages: list[Stage]

    @property
    def builder(self) -> Stage:
        """The stage that installs the workspace (the one running ``uv sync``)."""
        (builder,) = [s for s in self.stages if s.uv_syncs()]
        return builder

    @property
    def runtime(self) -> Stage:
        return self.stages[-1]


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """The Dockerfile's instructions with continuations joined and comments dropped."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # inside a continuation too, as Docker does
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        yield start, " ".join(pending)
        pending = []
    assert not pending, "the Dockerfile ends inside a line continuation"


def parse_dockerfile(service: str) -> Dockerfile:
    path = ROOT / "services" / service / "Dockerfile"
    if not path.is_file():
        pytest.fail(f"{path.relative_to(ROOT)} is missing")
    stages: list[Stage] = []
    for number, line in logical_lines(path.read_text()):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        else:
            assert stages, f"{path}:{number}: {keyword} before the first FROM"
            stages[-1].instructions.append(Instruction(keyword, args.strip(), number))
    return Dockerfile(service, path, stages)


def context_copies(stage: Stage) -> list[tuple[list[str], str]]:
    """The stage's COPYs from the build context: (sources, destination)."""
    copies = []
    for instruction in stage.all("COPY") + stage.all("ADD"):
        flags, words = instruction.flags_and_words()
        if "from" not in flags:
            copies.append((words[:-1], words[-1]))
    return copies
