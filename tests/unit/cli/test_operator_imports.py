"""The operator commands run in the janitor's image (`steno keys create` is how a key is
made in a cluster), which has steno-common but not the gateway or the transcriber."""

from __future__ import annotations

import subprocess
import sys

SERVICES = ("steno.gateway", "steno.transcriber")


def test_the_operator_commands_need_no_service_package() -> None:
    probe = (
        "import sys, steno.cli.keys, steno.cli.tenants, steno.cli.operator\n"
        f"print(sorted(m for m in sys.modules if m.startswith({SERVICES!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
