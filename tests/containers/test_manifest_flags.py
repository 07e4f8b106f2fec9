"""The ``docker run`` flags read from the manifests (part of ``make test``: no engine needed)."""

from __future__ import annotations

import os

import pytest

from tests.containers.manifests import manifest_container


def test_the_gateway_runs_as_its_manifest_says() -> None:
    gateway = manifest_container("gateway", "gateway")
    assert gateway.command == ["python", "-m", "steno.gateway"]
    assert gateway.grace_seconds == 60
    assert gateway.run_flags() == [
        "--user=10001:10001",
        "--read-only",
        "--security-opt=no-new-privileges",
        "--cap-drop=ALL",
        "--memory=1536m",
        f"--cpus={min(2.0, os.cpu_count() or 1)}",
        "--tmpfs=/tmp:rw,exec,uid=10001,gid=10001,size=256m",
    ]


def test_every_emptydir_becomes_a_tmpfs_of_its_size() -> None:
    flags = manifest_container("transcriber", "transcriber").run_flags()
    assert "--memory=4g" in flags
    assert [f for f in flags if f.startswith("--tmpfs=")] == [
        "--tmpfs=/tmp:rw,exec,uid=10001,gid=10001,size=6g",
        "--tmpfs=/var/lib/steno:rw,exec,uid=10001,gid=10001,size=4g",
    ]


def test_jobs_and_init_containers_are_found_too() -> None:
    assert manifest_container("migrate", "migrate").command == ["steno", "migrate"]
    assert manifest_container("janitor", "janitor").grace_seconds == 30
    waiting = manifest_container("transcriber", "wait-for-schema")
    assert waiting.command == ["steno", "migrate", "--wait", "600"]
    with pytest.raises(LookupError, match="no container 'sidecar'"):
        manifest_container("gateway", "sidecar")
