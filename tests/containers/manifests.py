"""The ``docker run`` flags that give a container what its Kubernetes manifest gives its pod:
the user, a read-only root, dropped capabilities, no privilege escalation, the memory limit
and the emptyDir mounts (as tmpfs). Read from ``deploy/k8s/base``, so the containers run
the way the manifests say, and a change there is what the run uses."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BASE = Path(__file__).resolve().parents[2] / "deploy/k8s/base"
# Kubernetes' binary suffixes as docker's (whose k, m and g are binary too).
_QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi)?$")
_DOCKER_UNITS = {None: "b", "Ki": "k", "Mi": "m", "Gi": "g"}


@dataclass(frozen=True)
class ManifestContainer:
    """A container of a workload in ``deploy/k8s/base``, with its pod's settings."""

    pod: dict[str, Any]
    container: dict[str, Any]

    @property
    def grace_seconds(self) -> int:
        """How long Kubernetes waits after SIGTERM before it kills (its default is 30 s)."""
        return int(self.pod.get("terminationGracePeriodSeconds", 30))

    @property
    def command(self) -> list[str]:
        return [*self.container.get("command", []), *self.container.get("args", [])]

    def run_flags(self) -> list[str]:
        security = {**self.pod.get("securityContext", {}), **self.container["securityContext"]}
        flags = [f"--user={security['runAsUser']}:{security['runAsGroup']}"]
        if security.get("readOnlyRootFilesystem"):
            flags.append("--read-only")
        if security.get("allowPrivilegeEscalation") is False:
            flags.append("--security-opt=no-new-privileges")
        flags += [f"--cap-drop={cap}" for cap in security["capabilities"]["drop"]]
        limits = self.container["resources"]["limits"]
        flags.append(f"--memory={_docker_bytes(limits['memory'])}")
        if "cpu" in limits:  # docker refuses more CPUs than the machine has
            flags.append(f"--cpus={min(_cpus(limits['cpu']), os.cpu_count() or 1)}")
        volumes = {volume["name"]: volume for volume in self.pod.get("volumes", [])}
        for mount in self.container.get("volumeMounts", []):
            # An emptyDir is writable by the pod's user and allows exec; docker's tmpfs
            # defaults to root's and noexec.
            options = [
                "rw",
                "exec",
                f"uid={security['runAsUser']}",
                f"gid={security['runAsGroup']}",
            ]
            size = volumes[mount["name"]]["emptyDir"].get("sizeLimit")
            if size:
                options.append(f"size={_docker_bytes(size)}")
            flags.append(f"--tmpfs={mount['mountPath']}:{','.join(options)}")
        return flags


def manifest_container(workload: str, container: str) -> ManifestContainer:
    """``container`` of the workload in ``deploy/k8s/base/<workload>.yaml``."""
    for document in yaml.safe_load_all((BASE / f"{workload}.yaml").read_text()):
        spec = (document or {}).get("spec", {})
        template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get(
            "template"
        )
        if template is None:
            continue
        pod = template["spec"]
        for candidate in pod.get("initContainers", []) + pod["containers"]:
            if candidate["name"] == container:
                return ManifestContainer(pod, candidate)
    raise LookupError(f"no container {container!r} in {workload}.yaml")


def _cpus(quantity: str | int | float) -> float:
    """A CPU quantity as cores: ``2``, ``"1.5"`` or millicores such as ``"500m"``."""
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _docker_bytes(quantity: str) -> str:
    found = _QUANTITY.match(quantity)
    if found is None:
        raise ValueError(f"unsupported Kubernetes quantity {quantity!r}")
    return f"{found.group(1)}{_DOCKER_UNITS[found.group(2)]}"
