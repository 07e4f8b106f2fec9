"""``steno dev``'s OpenAI-compatible HTTP API, as the README's "Using Steno from OpenAI
clients" section shows it: its curl command and its Python snippet, run as written (on a
free port instead of 8080), and the ready line that gives both addresses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_readme import ROOT, commands, section
from tests.support import free_port, outer_env, steno_dev

SECTION = "Using Steno from OpenAI clients"
HEARD = "Hello from Stino. This recording was transcribed on your own machine."


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_readme_curl_and_openai_client_work_as_written(tmp_path: Path) -> None:
    text = section((ROOT / "README.md").read_text(), SECTION)
    script = commands(text)
    [snippet] = python_blocks(text)
    assert any(c.startswith("curl -F file=@samples/hello.ogg") for c in script), script
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    port = free_port()
    with steno_dev(tmp_path, STENO_HTTP_PORT=str(port)) as address:
        here = f"127.0.0.1:{port}"
        curl = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", "\n".join(script).replace("127.0.0.1:8080", here)],
            cwd=tmp_path, env=outer_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        client = subprocess.run(
            [sys.executable, "-c", snippet.replace("127.0.0.1:8080", here)],
            cwd=tmp_path, env=outer_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert curl.returncode == 0, curl.stderr
    assert json.loads(curl.stdout) == {"text": HEARD}
    assert client.returncode == 0, client.stderr
    assert re.match(rf"1\n00:00:00,000 --> 00:00:0\d,\d{{3}}\n{re.escape(HEARD)}\n", client.stdout)
    ready = next(
        entry
        for entry in map(json.loads, (tmp_path / "dev.log").read_text().splitlines())
        if entry.get("message") == "steno dev ready"
    )
    assert (ready["address"], ready["http"]) == (address, f"http://{here}")
