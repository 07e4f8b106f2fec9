"""Steno's three images, built with the project's Dockerfile on a Docker engine of the run's
own, for the tests that run the stack as containers (``make e2e-containers``).

STENO_CONTAINER_CACHE names the folder kept between runs (default
``~/.cache/steno/containers``): the base images' sources, and the engine's data root with
the images and BuildKit's cache, so a second run rebuilds only what changed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.containers.base_images import python_image, uv_image, uv_version
from tests.containers.docker_engine import DockerEngine, docker_engine

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("gateway", "transcriber", "janitor")
# What the run took, printed at its end: (step, seconds, image size in bytes or None).
TIMINGS: list[tuple[str, float, int | None]] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("containers: timings and image sizes")
    for step, seconds, size in TIMINGS:
        image = f"  {size / 1e6:7.1f} MB" if size is not None else ""
        terminalreporter.write_line(f"{step:<32} {seconds:7.1f} s{image}")


@dataclass(frozen=True)
class Images:
    """The images built for this run, by Dockerfile target."""

    gateway: str
    transcriber: str
    janitor: str


@pytest.fixture(scope="session")
def container_cache() -> Path:
    cache = Path(os.environ.get("STENO_CONTAINER_CACHE", Path.home() / ".cache/steno/containers"))
    cache.mkdir(parents=True, exist_ok=True)
    return cache


@pytest.fixture(scope="session")
def engine(container_cache: Path) -> Iterator[DockerEngine]:
    started = time.monotonic()
    with docker_engine(container_cache / "docker", container_cache / "dockerd.log") as running:
        TIMINGS.append(("start dockerd", time.monotonic() - started, None))
        yield running


@pytest.fixture(scope="session")
def images(engine: DockerEngine, container_cache: Path) -> Images:
    """The three targets, built on the locally made bases; each build is timed."""
    started = time.monotonic()
    python = python_image(engine, container_cache)
    TIMINGS.append(("base image: python (debootstrap)", time.monotonic() - started, None))
    started = time.monotonic()
    uv = uv_image(engine, container_cache, uv_version(ROOT / "Dockerfile"))
    TIMINGS.append(("base image: uv (wheel)", time.monotonic() - started, None))
    built = {}
    for target in TARGETS:
        reference = f"steno-{target}:e2e"
        started = time.monotonic()
        engine.docker(
            "build",
            # The build's RUN steps fetch packages, and the engine has no bridge network.
            "--network=host",
            f"--target={target}",
            f"--build-arg=PYTHON_IMAGE={python}",
            f"--build-arg=UV_IMAGE={uv}",
            f"--tag={reference}",
            str(ROOT),
            timeout=1800,
        )
        TIMINGS.append(
            (f"build {target}", time.monotonic() - started, engine.image_size(reference))
        )
        built[target] = reference
    return Images(**built)
