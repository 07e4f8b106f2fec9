"""The Tiltfile, evaluated by a real Starlark interpreter with stand-ins for Tilt's built-ins
that record every call; then every path, Dockerfile, image, resource and port it names is
checked against the repository and the dev overlay as kustomize builds it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import starlark

from tests.deploy.dockerfile import DOCKERFILE, context_copies, image

ROOT = Path(__file__).resolve().parents[2]
DEV_OVERLAY = "deploy/k8s/overlays/dev"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "CronJob", "DaemonSet"}


@dataclass
class Tilt:
    """What the Tiltfile asked Tilt to do."""

    images: list[dict[str, Any]] = field(default_factory=list)
    yaml: list[Any] = field(default_factory=list)
    kustomized: list[str] = field(default_factory=list)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    local_resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    loads: list[str] = field(default_factory=list)

    def globals_module(self) -> starlark.Module:
        module = starlark.Module()
        module["TRIGGER_MODE_MANUAL"] = "TRIGGER_MODE_MANUAL"
        module["TRIGGER_MODE_AUTO"] = "TRIGGER_MODE_AUTO"
        module.add_callable("docker_build", self._docker_build)
        module.add_callable("k8s_yaml", self.yaml.append)
        module.add_callable("kustomize", self._kustomize)
        module.add_callable("k8s_resource", self._k8s_resource)
        module.add_callable("local_resource", self._local_resource)
        module.add_callable("port_forward", _port_forward)
        module.add_callable("sync", lambda src, dest: {"step": "sync", "src": src, "dest": dest})
        module.add_callable("fall_back_on", lambda files: {"step": "fall_back_on", "files": files})
        module.add_callable("run", lambda cmd, **kw: {"step": "run", "cmd": cmd, **kw})
        return module

    def extension(self, name: str) -> starlark.FrozenModule:
        """The Tilt extensions the Tiltfile loads; only restart_process is stood in for."""
        self.loads.append(name)
        if name != "ext://restart_process":
            raise ValueError(f"the Tiltfile loads an extension the test does not know: {name}")
        module = starlark.Module()
        module.add_callable("docker_build_with_restart", self._docker_build)
        return module.freeze()

    def _docker_build(self, ref: str, context: str, **options: Any) -> None:
        self.images.append({"ref": ref, "context": context, **options})

    def _kustomize(self, path: str) -> str:
        self.kustomized.append(path)
        return f"kustomize:{path}"

    def _k8s_resource(self, workload: str, **options: Any) -> None:
        assert workload not in self.resources, f"k8s_resource({workload!r}) twice"
        self.resources[workload] = options

    def _local_resource(self, name: str, **options: Any) -> None:
        assert name not in self.local_resources, f"local_resource({name!r}) twice"
        self.local_resources[name] = options


def _port_forward(local: int, container: int | None = None, **options: Any) -> dict[str, Any]:
    return {"local": local, "container": container or local, **options}


@pytest.fixture(scope="module")
def tilt() -> Tilt:
    tilt = Tilt()
    ast = starlark.parse("Tiltfile", (ROOT / "Tiltfile").read_text())
    starlark.eval(
        tilt.globals_module(),
        ast,
        starlark.Globals.standard(),
        starlark.FileLoader(tilt.extension),
    )
    return tilt


@pytest.fixture
def dev_objects(builds: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The dev overlay, built by kustomize as Tilt's kustomize() does."""
    return builds["dev"]


def workloads(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] in WORKLOAD_KINDS}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template: dict[str, Any] = spec["template"]["spec"]
    return template


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_the_tiltfile_deploys_the_dev_overlay(tilt: Tilt) -> None:
    assert tilt.kustomized == [DEV_OVERLAY]
    assert tilt.yaml == [f"kustomize:{DEV_OVERLAY}"]
    assert (ROOT / DEV_OVERLAY / "kustomization.yaml").is_file()


def test_every_image_builds_from_files_that_exist(tilt: Tilt) -> None:
    assert sorted(built["ref"] for built in tilt.images) == [
        "steno-gateway",
        "steno-janitor",
        "steno-transcriber",
    ]
    for built in tilt.images:
        assert (ROOT / built["context"]).is_dir()
        assert (ROOT / built["dockerfile"]).is_file(), built["dockerfile"]
        for path in built.get("only", []):
            assert (ROOT / path).exists(), f"{built['ref']}: only={path!r} does not exist"


def test_each_image_is_its_services_target_of_the_dockerfile(tilt: Tilt) -> None:
    for built in tilt.images:
        assert ROOT / built["context"] == ROOT
        assert ROOT / built["dockerfile"] == DOCKERFILE
        assert built["target"] == built["ref"].removeprefix("steno-")


def test_each_build_context_holds_what_its_target_copies(tilt: Tilt) -> None:
    for built in tilt.images:
        target = image(built["ref"].removeprefix("steno-"))
        for stage in target.stages:
            for sources, _ in context_copies(stage):
                for source in sources:
                    assert any(
                        source == only or source.startswith(only.rstrip("/") + "/")
                        for only in built["only"]
                    ), f"{built['ref']}: {source} is copied but not in only={built['only']}"


def test_live_updates_sync_existing_sources_and_rebuild_on_dependency_changes(
    tilt: Tilt,
) -> None:
    restarted = [built for built in tilt.images if "live_update" in built]
    assert sorted(built["ref"] for built in restarted) == ["steno-gateway", "steno-transcriber"]
    for built in restarted:
        steps = built["live_update"]
        assert steps[0]["step"] == "fall_back_on", "fall_back_on must come first"
        for path in steps[0]["files"]:
            assert (ROOT / path).is_file(), path
        assert {"uv.lock", "pyproject.toml"} <= set(steps[0]["files"])
        syncs = [step for step in steps if step["step"] == "sync"]
        assert syncs, f"{built['ref']} syncs nothing"
        for step in syncs:
            assert (ROOT / step["src"]).is_dir(), step["src"]
            assert step["dest"].startswith("/")
        service = built["ref"].removeprefix("steno-")
        assert f"services/{service}/src/steno" in [step["src"] for step in syncs]
        assert built["entrypoint"] == ["python", "-m", f"steno.{service}"]


def test_every_image_is_one_the_manifests_run(
    tilt: Tilt, dev_objects: list[dict[str, Any]]
) -> None:
    used = {
        container["image"].split(":")[0]
        for workload in workloads(dev_objects).values()
        for container in containers(workload)
    }
    for built in tilt.images:
        assert built["ref"] in used, f"no workload runs {built['ref']}"


def test_every_resource_is_a_workload_of_the_overlay(
    tilt: Tilt, dev_objects: list[dict[str, Any]]
) -> None:
    defined = workloads(dev_objects)
    assert set(tilt.resources) <= set(defined), set(tilt.resources) - set(defined)
    steno_workloads = {name for name in defined if name.startswith("steno-")}
    assert steno_workloads <= set(tilt.resources), "a Steno workload has no labels or deps"


def test_resource_deps_name_resources_that_exist(tilt: Tilt) -> None:
    known = set(tilt.resources) | set(tilt.local_resources)
    for name, options in [*tilt.resources.items(), *tilt.local_resources.items()]:
        for dependency in options.get("resource_deps", []):
            assert dependency in known, f"{name} depends on unknown {dependency}"
    assert "steno-migrate" in tilt.resources["steno-gateway"]["resource_deps"]
    assert "steno-migrate" in tilt.resources["steno-transcriber"]["resource_deps"]


@pytest.mark.parametrize(
    ("resource", "ports"),
    [("steno-gateway", [50051, 8080]), ("minio", [9001]), ("rabbitmq", [15672])],
)
def test_port_forwards_reach_ports_the_containers_listen_on(
    tilt: Tilt, dev_objects: list[dict[str, Any]], resource: str, ports: list[int]
) -> None:
    forwards = tilt.resources[resource].get("port_forwards", [])
    assert [forward["local"] for forward in forwards] == ports
    listening = {
        declared["containerPort"]
        for container in containers(workloads(dev_objects)[resource])
        for declared in container.get("ports", [])
    }
    assert {forward["container"] for forward in forwards} <= listening


def test_local_resources_run_what_exists(tilt: Tilt, dev_objects: list[dict[str, Any]]) -> None:
    protos = tilt.local_resources["protos"]
    assert protos["cmd"] == "make protos"
    assert re.search(r"^protos:", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert all((ROOT / path).exists() for path in protos["deps"])

    janitor = tilt.local_resources["janitor-now"]
    assert janitor["trigger_mode"] == "TRIGGER_MODE_MANUAL"
    assert janitor["auto_init"] is False
    cronjob = re.search(r"--from=cronjob/(\S+)", janitor["cmd"])
    assert cronjob is not None
    assert workloads(dev_objects)[cronjob.group(1)]["kind"] == "CronJob"


def test_only_the_restart_extension_is_loaded(tilt: Tilt) -> None:
    assert tilt.loads == ["ext://restart_process"]


def test_each_build_context_is_only_what_its_target_copies(tilt: Tilt) -> None:
    """A file one image does not copy must not be in its context: Tilt would rebuild that
    image on every change to it, and a pod with a rebuilt image that has no live update (the
    janitor image of the init containers) is redeployed instead of live-updated."""
    for built in tilt.images:
        target = image(built["ref"].removeprefix("steno-"))
        copied = {
            source
            for stage in target.stages
            for sources, _ in context_copies(stage)
            for source in sources
        }
        for only in built["only"]:
            assert any(
                source == only or source.startswith(only.rstrip("/") + "/") for source in copied
            ), f"{built['ref']}: only={only!r} is not copied by target {target.service}"


def test_the_restart_file_is_writable_and_not_hidden_by_a_volume(
    tilt: Tilt, dev_objects: list[dict[str, Any]]
) -> None:
    """restart_process watches a file with `entr`, which exits when that file is missing: the
    file (made in the image, as the image's user) must not sit under a volume the container
    mounts, and must be in a directory the image's user owns."""
    restarted = [built for built in tilt.images if "live_update" in built]
    assert restarted
    for built in restarted:
        restart_file = PurePosixPath(built.get("restart_file", "/tmp/.restart-proc"))
        for workload in workloads(dev_objects).values():
            for container in containers(workload):
                if container["image"].split(":")[0] != built["ref"]:
                    continue
                for mount in container.get("volumeMounts", []):
                    mounted = PurePosixPath(mount["mountPath"])
                    assert mounted != restart_file and mounted not in restart_file.parents, (
                        f"{built['ref']}: {restart_file} is hidden by the volume on {mounted}"
                    )
        runtime = image(built["ref"].removeprefix("steno-")).runtime
        user = runtime.all("USER")[-1].args
        owned = [
            PurePosixPath(command[-1])
            for command in runtime.commands()
            if command[:2] == ["chown", "-R"] and command[2] == user
        ]
        assert restart_file.parent in owned, (
            f"{built['ref']}: {restart_file.parent} is not owned by USER {user}"
        )
