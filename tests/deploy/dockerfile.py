"""Reading the Dockerfile without Docker: its stages, instructions and what they copy."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# One file for every image: a target per service.
DOCKERFILE = ROOT / "Dockerfile"


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
    """A build stage. A stage built FROM another inherits its instructions: ``instructions``
    holds the inherited ones first, and ``base`` is the image the chain starts from."""

    base: str
    name: str | None
    parent: str | None = None
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
class Image:
    """One service's image: the Dockerfile's target named after the service, and the stages
    it is built from."""

    service: str
    path: Path
    stages: list[Stage]  # in the file's order, the target last

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


def parse_dockerfile(build_args: Mapping[str, str] | None = None) -> dict[str, Stage]:
    """The Dockerfile's stages by name, with the global ARGs (their defaults, or
    ``build_args``) substituted in the FROM lines, as ``docker build --build-arg`` does."""
    if not DOCKERFILE.is_file():
        pytest.fail(f"{DOCKERFILE.relative_to(ROOT)} is missing")
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    last: Stage | None = None
    for number, line in logical_lines(DOCKERFILE.read_text()):
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "ARG" and last is None:
            name, _, default = rest.partition("=")
            args[name] = (build_args or {}).get(name, default)
        elif keyword == "FROM":
            words = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m[1] or m[2]], rest).split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            parent = stages.get(words[0])
            last = Stage(
                base=parent.base if parent else words[0],
                name=name,
                parent=parent.name if parent else None,
                instructions=list(parent.instructions) if parent else [],
            )
            stages[name or f"#{len(stages)}"] = last
        else:
            assert last, f"{DOCKERFILE}:{number}: {keyword} before the first FROM"
            last.instructions.append(Instruction(keyword, rest, number))
    return stages


def image(service: str, build_args: Mapping[str, str] | None = None) -> Image:
    """The image of ``service``: its target, and every stage that target is FROM or copies
    from, directly or not."""
    stages = parse_dockerfile(build_args)
    if service not in stages:
        pytest.fail(f"{DOCKERFILE.relative_to(ROOT)} has no target {service!r}")
    needed: set[str] = set()
    pending = [service]
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        needed.add(name)
        stage = stages[name]
        pending += [stage.parent] if stage.parent else []
        for copy in stage.all("COPY"):
            pending += [s for s in copy.flags_and_words()[0].get("from", []) if s in stages]
    return Image(service, DOCKERFILE, [s for name, s in stages.items() if name in needed])


def context_copies(stage: Stage) -> list[tuple[list[str], str]]:
    """The stage's COPYs from the build context: (sources, destination)."""
    copies = []
    for instruction in stage.all("COPY") + stage.all("ADD"):
        flags, words = instruction.flags_and_words()
        if "from" not in flags:
            copies.append((words[:-1], words[-1]))
    return copies
