"""Running Steno's images as their manifests run them, on the host's network, and removing
every container the test made, whatever happened."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.containers.docker_engine import DockerEngine
from tests.containers.manifests import ManifestContainer


@dataclass
class Containers:
    """Containers of one test, named ``steno-e2e-<run>-<name>``. The settings they share,
    credentials among them, are passed in an env file rather than on a command line."""

    engine: DockerEngine
    env_file: Path
    prefix: str = field(default_factory=lambda: f"steno-e2e-{uuid.uuid4().hex[:8]}")
    names: list[str] = field(default_factory=list)
    # The long-running ones, whose logs are kept (and scanned for secrets, as every
    # service's are); a one-off's output is its caller's, such as a new key.
    services: list[str] = field(default_factory=list)

    def run(
        self, image: str, manifest: ManifestContainer, *command: str, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Runs a container to its end (a Job's or a CronJob's) and returns what it printed;
        ``command`` replaces the manifest's."""
        command = command or tuple(manifest.command)
        name = self._name(command[0])
        return self.engine.docker(
            "run", f"--name={name}", *self._flags(manifest), image, *command, timeout=timeout
        )

    def start(self, image: str, manifest: ManifestContainer, name: str, env: dict[str, str]) -> str:
        """Starts a long-running container (a Deployment's) in the background with its
        manifest's command, and ``env`` (its ports) besides the env file."""
        container = self._name(name)
        self.services.append(container)
        settings = [f"--env={key}={value}" for key, value in env.items()]
        self.engine.docker(
            "run",
            "--detach",
            f"--name={container}",
            *self._flags(manifest),
            *settings,
            image,
            *manifest.command,
        )
        return container

    def running(self, container: str) -> bool:
        """Whether it still runs; one that has exited fails the test with its logs."""
        state = self.state(container)
        if not state["Running"]:
            raise AssertionError(
                f"{container} exited with {state['ExitCode']}:\n{self.logs(container)}"
            )
        return True

    def state(self, container: str) -> dict[str, object]:
        inspected = self.engine.docker("inspect", "--format={{json .State}}", container)
        state: dict[str, object] = json.loads(inspected.stdout)
        return state

    def logs(self, container: str) -> str:
        done = self.engine.docker("logs", container, check=False)
        return done.stdout + done.stderr

    def stop(self, container: str, grace: int) -> float:
        """``docker stop`` (SIGTERM, then SIGKILL after ``grace`` s); the seconds it took."""
        started = time.monotonic()
        self.engine.docker("stop", f"--time={grace}", container, timeout=grace + 30)
        return time.monotonic() - started

    def remove_all(self, logs: Path) -> None:
        """Saves the services' logs under ``logs``, then removes every container."""
        logs.mkdir(parents=True, exist_ok=True)
        for name in self.services:
            (logs / f"{name}.log").write_text(self.logs(name))
        self.engine.remove_containers(self.names)

    def _name(self, role: str) -> str:
        name = f"{self.prefix}-{role}-{len(self.names)}"
        self.names.append(name)
        return name

    def _flags(self, manifest: ManifestContainer) -> list[str]:
        return ["--network=host", f"--env-file={self.env_file}", *manifest.run_flags()]
