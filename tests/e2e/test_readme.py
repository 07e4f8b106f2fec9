"""The README's console sessions run as written: its Quick start, grpcurl and API-key
sections, in one shell, against a fresh ``steno dev`` (on a free port instead of 50051,
which ``STENO_SERVER`` gives the CLI)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support import outer_env, steno_dev

ROOT = Path(__file__).parents[2]
SECTIONS = ("Quick start", "Talking to it with grpcurl", "API keys and tenants")


def section(readme: str, title: str) -> str:
    start = readme.index(f"\n## {title}\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def commands(text: str) -> list[str]:
    """The ``$ `` lines of the section's console blocks, with their continuation lines (a
    trailing backslash, or a quoted argument still open)."""
    found: list[str] = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        lines = iter(block.splitlines())
        for line in lines:
            if not line.startswith("$ "):
                continue
            command = line[2:]
            while command.endswith("\\") or command.count("'") % 2:
                command += "\n" + next(lines)
            found.append(command)
    return found


def test_the_readme_sessions_work_as_written(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    script = [command for title in SECTIONS for command in commands(section(readme, title))]
    assert "make run" in script[0] and len(script) > 20, script
    print(f"{len(script)} README commands")
    for linked in (".venv", "samples"):
        (tmp_path / linked).symlink_to(ROOT / linked)
    with steno_dev(tmp_path) as address:
        lines = ["set -euo pipefail"]
        for command in script[1:]:  # `make run` is the steno dev above
            command = command.replace("127.0.0.1:50051", address)
            # A call the README shows failing (CancelJob on a finished job) may fail here.
            lines.append(f"{{ {command}\n}}" + (" || true" if "CancelJob" in command else ""))
        done = subprocess.run(
            ["bash", "-c", "\n".join(lines)],
            cwd=tmp_path, env={**outer_env(), "STENO_SERVER": address},
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    assert done.returncode == 0, f"{done.stderr}\n--- script ---\n" + "\n".join(lines)
    out = done.stdout
    assert "Hello from Stino. This recording was transcribed on your own machine." in out
    assert "Hello from Steno. This recording was transcribed on your own machine." in out
    assert "steno.v1.AdminService" in out and '"state": "JOB_STATE_COMPLETED"' in out
    assert "WEBVTT" in out and '"audio_objects"' in out and '"key": "stn_' in out
    assert "concurrent_jobs\t20\t20\t0" in out and '"concurrent_jobs": "5"' in out
