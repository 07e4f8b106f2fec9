"""`steno-client` on its own: what the lockfile says it installs, then installed for real into
a fresh venv and imported there. A user who wants only the SDK and CLI gets the contract and
grpcio, never the server library or its adapters' dependencies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.deploy.lockfile import ROOT, clean_environment, export, exported_packages, uv

CLIENT_MODULES = ["steno.client", "steno.client.cli", "steno.v1.transcription_service_pb2_grpc"]
# The server side: steno.common and what its adapters, the services and the engines need.
SERVER_MODULES = ["steno.common", "sqlalchemy", "aio_pika", "minio", "faster_whisper"]
SERVER_DISTRIBUTIONS = {"steno-common", "sqlalchemy", "aio-pika", "minio", "faster-whisper"}


def test_the_lockfile_installs_no_server_library_with_the_client() -> None:
    installed = exported_packages("steno-client", [])
    assert {"steno-client", "steno-contract", "grpcio", "protobuf"} <= installed
    assert not installed & SERVER_DISTRIBUTIONS, sorted(installed & SERVER_DISTRIBUTIONS)


def test_the_client_installs_and_imports_in_a_fresh_venv(tmp_path: Path) -> None:
    env = clean_environment()
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    # Exactly the locked versions: the client's and the contract's directories, and the pinned
    # third-party packages they depend on (from uv's cache, when it has them). --no-sources
    # installs them as a user would: the workspace's sources would make uv install the
    # client's steno-contract as an editable link to this repository.
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(export("steno-client", "--no-editable"))

    def run(*command: str | Path, cwd: Path = ROOT) -> str:
        done = subprocess.run(
            [str(word) for word in command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{' '.join(map(str, command))}:\n{done.stderr}"
        return done.stdout

    run(uv(), "venv", "--quiet", "--python", sys.executable, venv)
    run(uv(), "pip", "install", "--quiet", "--python", python, "--no-sources", "-r", requirements)

    # Run from outside the repository, so only what the venv holds can be imported.
    found = json.loads(
        run(
            python,
            "-c",
            "import importlib, importlib.util, json, sys\n"
            "def origin(module):\n"
            "    try:\n"
            "        return importlib.util.find_spec(module).origin\n"
            "    except (ImportError, AttributeError):\n"
            "        return None\n"
            f"for module in {CLIENT_MODULES!r}:\n"
            "    importlib.import_module(module)\n"
            f"modules = {CLIENT_MODULES + SERVER_MODULES!r}\n"
            "print(json.dumps({m: origin(m) for m in modules}))",
            cwd=tmp_path,
        )
    )
    for module in CLIENT_MODULES:
        assert found[module], f"{module} is not installed"
        assert Path(found[module]).is_relative_to(venv), f"{module} is at {found[module]}"
    installed = [module for module in SERVER_MODULES if found[module]]
    assert not installed, f"installing steno-client brought in {installed}"
