"""A Docker engine of the run's own: Debian's ``dockerd`` on a private socket, data root and
exec root, with no bridge and no iptables rules (containers share the host's network).

It needs no system Docker and changes nothing outside its folders. The data root lives in
the cache folder, so images and BuildKit's cache mounts survive from one run to the next;
the exec root (sockets, runtime state) is the run's own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support import stop_process, wait_for

DOCKERD = "/usr/sbin/dockerd"
# Debian's client: it drives the daemon's builtin BuildKit. (A client installed elsewhere
# may lack it, and then builds would need buildx.)
DOCKER = "/usr/bin/docker"
# What a setup step may name when the engine is missing.
INSTALL_HINT = "apt-get install -y docker.io debootstrap"


class EngineUnavailable(RuntimeError):
    """The Docker engine could not be started here."""


@dataclass(frozen=True)
class DockerEngine:
    """The client side of a running private engine."""

    socket: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_BUILDKIT": "1"}

    def docker(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Runs ``docker args``; a failure raises with what the client printed."""
        done = subprocess.run(
            [DOCKER, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args)} exited with {done.returncode}:\n{done.stderr}"
            )
        return done

    def has_image(self, reference: str) -> bool:
        return self.docker("image", "inspect", reference, check=False).returncode == 0

    def image_size(self, reference: str) -> int:
        return int(self.docker("image", "inspect", "--format", "{{.Size}}", reference).stdout)

    def remove_containers(self, names: Sequence[str]) -> None:
        """Removes these containers if they exist, running or not."""
        if names:
            self.docker("rm", "--force", "--volumes", *names, check=False)


@contextlib.contextmanager
def docker_engine(data_root: Path, log: Path) -> Iterator[DockerEngine]:
    """Starts ``dockerd`` on ``data_root`` and stops it, by its PID, on the way out."""
    for tool in (DOCKERD, DOCKER):
        if not Path(tool).exists():
            raise EngineUnavailable(f"{tool} is missing: {INSTALL_HINT}")
    if os.geteuid() != 0:
        raise EngineUnavailable("dockerd needs root to start")
    data_root.mkdir(parents=True, exist_ok=True)
    # Short: the daemon puts unix sockets under it, whose paths may not exceed 108 bytes.
    exec_root = Path(tempfile.mkdtemp(prefix="steno-docker-"))
    socket = exec_root / "docker.sock"
    with log.open("ab") as out:
        daemon = subprocess.Popen(
            [
                DOCKERD,
                f"--data-root={data_root}",
                f"--exec-root={exec_root}",
                f"--pidfile={exec_root / 'dockerd.pid'}",
                f"--host=unix://{socket}",
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    engine = DockerEngine(socket)
    try:
        wait_for(
            lambda: (
                daemon.poll() is not None
                or engine.docker("version", check=False, timeout=10).returncode == 0
            ),
            timeout=60,
            what="dockerd to answer",
        )
        if daemon.poll() is not None:
            raise EngineUnavailable(f"dockerd exited with {daemon.returncode}; see {log}")
        yield engine
    finally:
        stop_process(daemon)
        shutil.rmtree(exec_root, ignore_errors=True)
