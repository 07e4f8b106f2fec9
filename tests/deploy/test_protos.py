"""The contract is guarded: buf lints the protos, COMMENTS rule included, and `buf breaking`
(in ``make lint``) fails a change that would break clients of main's protos. The breaking
checks run on a throwaway repository: main holds a copy of the protos and buf.yaml, a
feature branch changes them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, VENV_BIN

# What the Makefile's lint compares the protos with.
AGAINST_MAIN = ".git#branch=main,subdir=protos"


def buf(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = VENV_BIN / "buf"
    if not path.is_file():
        pytest.fail(
            f"buf is not installed next to {sys.executable}: it comes with the dev "
            "dependency buf-bin (run `make sync`)"
        )
    return subprocess.run([str(path), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def breaking(repo: Path) -> subprocess.CompletedProcess[str]:
    return buf(repo, "breaking", "protos", "--against", AGAINST_MAIN)


def git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=Steno tests", "-c", "user.email=tests@steno.invalid"]
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True)


def commit_change(repo: Path, proto: str, old: str, new: str) -> None:
    """Replaces ``old`` with ``new`` in one of the repository's protos and commits it."""
    path = repo / "protos" / "steno" / "v1" / proto
    text = path.read_text()
    assert old in text, f"{proto} no longer has {old!r}"
    path.write_text(text.replace(old, new, 1))
    git(repo, "commit", "--quiet", "--all", "--message", f"{proto}: {old!r} -> {new!r}")


@pytest.fixture
def contract(tmp_path: Path) -> Path:
    """A git repository whose main branch holds this checkout's protos and buf.yaml, with a
    feature branch checked out."""
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    shutil.copy(ROOT / "buf.yaml", tmp_path)
    git(tmp_path, "init", "--quiet", "--initial-branch=main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "--quiet", "--message", "the contract")
    git(tmp_path, "switch", "--quiet", "--create", "feature")
    return tmp_path


def test_the_protos_pass_buf_lint() -> None:
    done = buf(ROOT, "lint")
    assert done.returncode == 0, done.stdout + done.stderr


def test_lint_wants_every_field_documented(contract: Path) -> None:
    commit_change(contract, "job.proto", "  // The model the engine used.\n", "")
    done = buf(contract, "lint")
    assert done.returncode != 0
    assert 'Field "model" should have a non-empty comment' in done.stdout, done.stdout


def test_on_main_the_protos_are_compared_with_themselves_and_pass(contract: Path) -> None:
    git(contract, "switch", "--quiet", "main")
    done = breaking(contract)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_new_field_is_not_breaking(contract: Path) -> None:
    commit_change(
        contract,
        "job.proto",
        "  repeated string warnings = 27;\n",
        # A number far above those the contract uses, so new fields never collide with it.
        "  repeated string warnings = 27;\n"
        "  // Where the job came from.\n"
        "  string origin = 1000;\n",
    )
    done = breaking(contract)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_renamed_field_is_breaking_and_named(contract: Path) -> None:
    commit_change(contract, "job.proto", "string filename = 3;", "string file_name = 3;")
    done = breaking(contract)
    assert done.returncode != 0
    assert 'on message "Job" changed name from "filename" to "file_name"' in done.stdout, (
        done.stdout + done.stderr
    )
