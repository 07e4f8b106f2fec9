"""The uv the Makefile pins, and what the lockfile says a workspace package installs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def uv() -> str:
    pinned = ROOT / ".tools" / "bin" / "uv"  # what the Makefile installs
    found = str(pinned) if pinned.is_file() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed: run `make sync`, which installs it into .tools")
    return found


def clean_environment() -> dict[str, str]:
    """This process's environment without what would point uv or Steno elsewhere (`make test`
    exports UV_PROJECT_ENVIRONMENT=.venv); uv's cache and index settings stay."""
    elsewhere = {"UV_PROJECT_ENVIRONMENT", "UV_PYTHON", "VIRTUAL_ENV", "PYTHONPATH"}
    return {k: v for k, v in os.environ.items() if k not in elsewhere and k[:6] != "STENO_"}


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def export(package: str, *options: str) -> str:
    """``uv export`` of what ``uv sync --package`` installs, from the lockfile alone (as a
    requirements file; ``options`` are more of uv export's, such as extras)."""
    done = subprocess.run(
        [uv(), "export", "--frozen", "--no-dev", "--no-hashes", "--package", package, *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"uv export --package {package} failed:\n{done.stderr}"
    return done.stdout


def exported_packages(package: str, extras: list[str]) -> set[str]:
    """The names of everything ``uv sync --package`` installs (workspace members as the names
    of their directories' projects)."""
    names = set()
    for line in export(package, *extras, "--no-editable").splitlines():
        if not line or line[0] in "# ":
            continue
        if line.startswith("./") or line == ".":
            with (ROOT / line / "pyproject.toml").open("rb") as pyproject:
                names.add(normalized(tomllib.load(pyproject)["project"]["name"]))
            continue
        name = re.match(r"[A-Za-z0-9._-]+", line)
        assert name, line
        names.add(normalized(name.group()))
    return names


def makefile_uv_version() -> str:
    found = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert found, "the Makefile no longer pins UV_VERSION"
    return found.group(1)


def workspace_members() -> set[str]:
    with (ROOT / "uv.lock").open("rb") as lock:
        return set(tomllib.load(lock)["manifest"]["members"])
