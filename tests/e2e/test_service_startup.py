"""A service that cannot run says why in one line and exits non-zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from steno.cli.dev import DevSettings
from tests.support import free_port, outer_env, service_env


def start(service: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"steno.{service}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("service", ["gateway", "transcriber"])
def test_without_a_broker_the_service_explains_and_exits(service: str, tmp_path: Path) -> None:
    env = outer_env()
    env["STENO_DATA_DIR"] = str(tmp_path)
    done = start(service, env)
    assert done.returncode != 0
    assert f"steno.{service} needs a broker: set STENO_AMQP_URL" in done.stderr
    assert "steno dev" in done.stderr


def test_gateway_with_an_unreachable_object_store_explains_and_exits(settings: DevSettings) -> None:
    env = service_env(settings, STENO_S3_ENDPOINT=f"127.0.0.1:{free_port()}")
    done = start("gateway", env)
    assert done.returncode != 0
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("steno.gateway cannot run: the object store is unreachable")
