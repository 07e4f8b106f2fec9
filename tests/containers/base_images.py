"""The Dockerfile's two base images, made here because no registry can be reached.

- Python: Debian bookworm from ``debootstrap --variant=minbase`` with Debian's Python 3.11,
  laid out like the official ``python:3.11-slim-bookworm`` where the Dockerfile looks
  (``/usr/local/bin/python3.11``), imported with ``docker import``. It trusts the CAs this
  machine trusts (its bundle, named by ``SSL_CERT_FILE`` for uv), so the builds reach PyPI
  from behind a proxy that re-signs TLS, as the host's own tools do.
- uv: the ``uv`` binary from PyPI's wheel of the version the Dockerfile names, alone in a
  ``FROM scratch`` image at ``/uv``, as in uv's own image.

Both are kept in the cache folder: the root filesystem as a tarball, and the images in the
engine's data root, so only a first run pays for debootstrap and the download.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from tests.containers.docker_engine import INSTALL_HINT, DockerEngine

DEBOOTSTRAP = "/usr/sbin/debootstrap"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Packages besides minbase: the interpreter, and the CAs that TLS to S3 or OpenAI needs.
PYTHON_PACKAGES = ["python3.11", "ca-certificates"]
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# What minbase keeps that no image needs: package caches, indexes and documentation.
TRIMMED = ["var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"]
PIP = Path(__file__).resolve().parents[2] / ".tools/bin/pip"
WHEEL_PLATFORMS = {"x86_64": "manylinux_2_17_x86_64", "aarch64": "manylinux_2_17_aarch64"}


def uv_version(dockerfile: Path) -> str:
    """The uv version of the Dockerfile's default ``UV_IMAGE``."""
    found = re.search(r"^ARG UV_IMAGE=\S+:(\S+)$", dockerfile.read_text(), re.MULTILINE)
    if found is None:
        raise AssertionError(f"{dockerfile} names no UV_IMAGE default")
    return found.group(1)


def python_image(engine: DockerEngine, cache: Path, mirror: str = DEBIAN_MIRROR) -> str:
    """The local Python base image, made once for what goes into it: its tag names a digest
    of the packages, what is trimmed and the CA bundle, so a change to any makes a new one."""
    recipe = hashlib.sha256(
        json.dumps([PYTHON_PACKAGES, TRIMMED, mirror]).encode() + Path(CA_BUNDLE).read_bytes()
    ).hexdigest()[:12]
    reference = f"steno-local/python:3.11-bookworm-{recipe}"
    if not engine.has_image(reference):
        tarball = cache / f"python-3.11-bookworm-{recipe}.tar"
        if not tarball.exists():
            _bootstrap(tarball, mirror)
        engine.docker(
            "import",
            "--change",
            "ENV LANG=C.UTF-8",
            "--change",
            f"ENV SSL_CERT_FILE={CA_BUNDLE}",
            "--change",
            'CMD ["python3"]',
            str(tarball),
            reference,
        )
    return reference


def uv_image(engine: DockerEngine, cache: Path, version: str) -> str:
    """A ``FROM scratch`` image with uv ``version`` at ``/uv``, made once."""
    reference = f"steno-local/uv:{version}"
    if engine.has_image(reference):
        return reference
    context = Path(tempfile.mkdtemp(dir=cache))
    try:
        wheel = _uv_wheel(version, cache)
        with zipfile.ZipFile(wheel) as archive:
            binary = context / "uv"
            binary.write_bytes(archive.read(f"uv-{version}.data/scripts/uv"))
            binary.chmod(0o755)
        (context / "Dockerfile").write_text("FROM scratch\nCOPY uv /uv\n")
        engine.docker("build", "--tag", reference, str(context))
    finally:
        shutil.rmtree(context)
    return reference


def _bootstrap(tarball: Path, mirror: str) -> None:
    if not Path(DEBOOTSTRAP).exists():
        raise AssertionError(f"{DEBOOTSTRAP} is missing: {INSTALL_HINT}")
    root = Path(tempfile.mkdtemp(dir=tarball.parent, prefix="rootfs-"))
    try:
        subprocess.run(
            [
                DEBOOTSTRAP,
                "--variant=minbase",
                f"--include={','.join(PYTHON_PACKAGES)}",
                "bookworm",
                str(root),
                mirror,
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
        for path in TRIMMED:
            shutil.rmtree(root / path)
            (root / path).mkdir()
        shutil.copyfile(CA_BUNDLE, root / CA_BUNDLE.lstrip("/"))
        # Where the official image has its Python, which the Dockerfile names.
        for name in ("python3.11", "python3", "python"):
            (root / "usr/local/bin" / name).symlink_to("/usr/bin/python3.11")
        partial = tarball.with_suffix(".partial")
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
            check=True,
            timeout=300,
        )
        partial.rename(tarball)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _uv_wheel(version: str, cache: Path) -> Path:
    """uv's manylinux wheel for this machine, downloaded by pip (which checks the index's
    hashes) with the tools environment the Makefile made."""
    platform_tag = WHEEL_PLATFORMS[platform.machine()]
    found = sorted(cache.glob(f"uv-{version}-*{platform_tag}*.whl"))
    if not found:
        subprocess.run(
            [
                str(PIP), "download", "--quiet", "--no-deps", "--only-binary=:all:",
                f"--platform={platform_tag}", f"--dest={cache}", f"uv=={version}",
            ],
            check=True,
            timeout=300,
        )  # fmt: skip
        found = sorted(cache.glob(f"uv-{version}-*{platform_tag}*.whl"))
    return found[0]
