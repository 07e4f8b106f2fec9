"""The Kubernetes manifests under deploy/k8s.

They build with kustomize (both overlays, and the base with the KEDA component); every
object validates against Kubernetes 1.30 (KEDA's against the schemas in ./schemas); they
agree with the code (settings, ports, queue, grace periods); every pod is locked down and the
network policies let through what the services need and nothing else. And the commands they
run are run here for real: the dev overlay's migration Job, init container and janitor
CronJob, with their Secret and ConfigMap looked up in the built objects and only the hosts
(and credentials, bucket, queue) swapped for the test Postgres, RabbitMQ and S3.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import math
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import asyncpg
import jsonschema
import kubernetes_validate
import pytest

from steno.cli.dev import DevSettings
from steno.common.broker.amqp_consuming import HAND_BACK_TIMEOUT
from steno.common.db import SqlJobRepository, create_engine
from steno.common.db.migrate import head_revision
from steno.common.jobs import JobState
from steno.common.settings import BrokerSettings, ServiceSettings
from steno.gateway import service as gateway
from steno.gateway.settings import GatewaySettings
from steno.janitor.settings import JanitorSettings
from steno.transcriber import service as transcriber
from steno.transcriber.settings import TranscriberSettings
from tests.conftest import POSTGRES_URL, S3Server
from tests.fakes import make_job

Obj = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SCHEMAS = Path(__file__).with_name("schemas")
KUBERNETES_VERSION = "1.30.0"
VENV_BIN = Path(sys.executable).parent

BUILDS = ["dev", "prod", "base+keda"]
# The Steno workloads, by kind and name, and their main container.
GATEWAY = ("Deployment", "steno-gateway", "gateway")
TRANSCRIBER = ("Deployment", "steno-transcriber", "transcriber")
JANITOR = ("CronJob", "steno-janitor", "janitor")
MIGRATE = ("Job", "steno-migrate", "migrate")
SERVICES = [GATEWAY, TRANSCRIBER, JANITOR]
# Environment variables a Steno container may have that are not STENO_* settings.
OTHER_ENV = {"OPENAI_API_KEY", "OPENAI_BASE_URL", "HF_HOME"}
SECRET = "steno-secrets"
STENO_UID = 10001


@pytest.fixture(params=BUILDS)
def built(request: pytest.FixtureRequest, builds: dict[str, list[Obj]]) -> list[Obj]:
    return builds[request.param]


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def lookup(objects: list[Obj], kind: str, name: str) -> Obj | None:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found[0] if found else None


def pod_template(workload: Obj) -> Obj:
    if workload["kind"] == "CronJob":
        return dict(workload["spec"]["jobTemplate"]["spec"]["template"])
    return dict(workload["spec"]["template"])


def pod_templates(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob"):
            yield obj, pod_template(obj)


def all_containers(pod: Obj) -> list[Obj]:
    spec = pod["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def container(objects: list[Obj], kind: str, name: str, container_name: str) -> Obj:
    pod = pod_template(find(objects, kind, name))
    found = [c for c in all_containers(pod) if c["name"] == container_name]
    assert len(found) == 1, f"{kind}/{name} has {len(found)} containers named {container_name}"
    return found[0]


def is_steno(pod: Obj) -> bool:
    return pod["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "steno"


def image_name(image: str) -> str:
    """The image's name without registry and tag: `r.example/steno-gateway:1`: `steno-gateway`."""
    return image.rsplit("/", 1)[-1].split(":", 1)[0]


def image_tag(image: str) -> str | None:
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def test_the_builds_hold_what_each_needs(builds: dict[str, list[Obj]]) -> None:
    steno = {
        ("ServiceAccount", "steno"),
        ("ConfigMap", "steno-config"),
        ("Deployment", "steno-gateway"),
        ("Service", "steno-gateway"),
        ("PodDisruptionBudget", "steno-gateway"),
        ("HorizontalPodAutoscaler", "steno-gateway"),
        ("Deployment", "steno-transcriber"),
        ("Service", "steno-transcriber"),
        ("CronJob", "steno-janitor"),
        ("Job", "steno-migrate"),
        ("NetworkPolicy", "steno-default-deny-ingress"),
        ("NetworkPolicy", "steno-gateway"),
        ("NetworkPolicy", "steno-transcriber"),
        ("NetworkPolicy", "steno-janitor"),
        ("NetworkPolicy", "steno-migrate"),
    }
    keda = {("ScaledObject", "steno-transcriber"), ("TriggerAuthentication", "steno-rabbitmq")}
    dev = {
        ("Secret", SECRET),
        ("ConfigMap", "rabbitmq-config"),
        *(
            (kind, name)
            for name in ("postgres", "rabbitmq", "minio")
            for kind in ("StatefulSet", "Service", "NetworkPolicy")
        ),
        ("Job", "minio-create-bucket"),
    }
    prod = {("Namespace", "steno"), ("NetworkPolicy", "steno-managed-services")}
    expected = {"dev": steno | dev, "prod": steno | keda | prod, "base+keda": steno | keda}
    for name, objects in builds.items():
        # A generated ConfigMap's name ends in a hash of its content (rabbitmq-config-…).
        names = [
            (o["kind"], re.sub(r"-[a-z0-9]{10}$", "", o["metadata"]["name"]))
            if o["kind"] == "ConfigMap"
            else (o["kind"], o["metadata"]["name"])
            for o in objects
        ]
        assert len(names) == len(set(names)), f"{name}: an object is there twice"
        assert set(names) == expected[name], name
    # Prod makes no Secret: it is expected to exist (see the overlay's kustomization.yaml).
    assert all(
        o["metadata"].get("namespace") == "steno"
        for o in builds["prod"]
        if o["kind"] != "Namespace"
    )


# --- validation -------------------------------------------------------------------------


def keda_validator(kind: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / f"keda-{kind.lower()}.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validation_errors(obj: Obj) -> list[str]:
    """What is wrong with ``obj``: Kubernetes 1.30's strict schemas for its own kinds, the
    vendored KEDA schemas for KEDA's; an object neither knows is an error too."""
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    if obj["apiVersion"].startswith("keda.sh/"):
        return [
            f"{where}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in keda_validator(obj["kind"]).iter_errors(obj)
        ]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{where}: {'.'.join(map(str, e.path))}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"{where}: {e.message}"]
    return []


def test_every_object_validates(built: list[Obj]) -> None:
    errors = [error for obj in built for error in validation_errors(obj)]
    assert errors == []


def test_the_validation_rejects_a_misspelt_field(builds: dict[str, list[Obj]]) -> None:
    prod = builds["prod"]
    deployment = copy.deepcopy(find(prod, "Deployment", "steno-gateway"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpcc"] = {}
    assert validation_errors(deployment)
    scaled = copy.deepcopy(find(prod, "ScaledObject", "steno-transcriber"))
    scaled["spec"]["minReplicas"] = 1
    assert validation_errors(scaled)
    trigger = copy.deepcopy(find(prod, "ScaledObject", "steno-transcriber"))
    trigger["spec"]["triggers"][0]["authenticationRef"]["nmae"] = "x"
    assert validation_errors(trigger)
    auth = copy.deepcopy(find(prod, "TriggerAuthentication", "steno-rabbitmq"))
    del auth["spec"]["secretTargetRef"][0]["key"]
    assert validation_errors(auth)
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert validation_errors(unknown)


# --- environment ------------------------------------------------------------------------


@dataclass(frozen=True)
class External:
    """A value from a Secret that the build does not hold (prod's, made outside)."""

    secret: str
    key: str


EnvValue = str | External


def cpu_cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def object_data(objects: list[Obj], kind: str, name: str) -> dict[str, str] | None:
    obj = lookup(objects, kind, name)
    if obj is None:
        return None
    if kind == "Secret":
        data = {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}
        return {**data, **obj.get("stringData", {})}
    return dict(obj.get("data", {}))


def environment(objects: list[Obj], spec: Obj) -> dict[str, EnvValue]:
    """A container's environment, its ConfigMap and Secret references looked up in the built
    objects. Only the Secret `steno-secrets` may be missing from a build (prod's); a missing
    key fails unless its reference is optional, when the variable is left out."""
    env: dict[str, EnvValue] = {}
    for source in spec.get("envFrom", []):
        kind, ref = (
            ("ConfigMap", source["configMapRef"])
            if "configMapRef" in source
            else ("Secret", source["secretRef"])
        )
        data = object_data(objects, kind, ref["name"])
        assert data is not None, f"{spec['name']}: no {kind} {ref['name']} in the build"
        env.update(data)
    for var in spec.get("env", []):
        name = var["name"]
        if "value" in var:
            env[name] = var["value"]
            continue
        source = var["valueFrom"]
        if "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            assert ref["resource"] == "limits.cpu", f"{name}: only limits.cpu is modelled"
            cores = cpu_cores(spec["resources"]["limits"]["cpu"])
            env[name] = str(math.ceil(cores / cpu_cores(ref.get("divisor", "1"))))
            continue
        kind, ref = (
            ("Secret", source["secretKeyRef"])
            if "secretKeyRef" in source
            else ("ConfigMap", source["configMapKeyRef"])
        )
        data = object_data(objects, kind, ref["name"])
        if data is None:
            assert (kind, ref["name"]) == ("Secret", SECRET), f"{name}: no {kind} {ref['name']}"
            env[name] = External(ref["name"], ref["key"])
        elif ref["key"] in data:
            env[name] = data[ref["key"]]
        else:
            assert ref.get("optional"), f"{name}: {kind} {ref['name']} has no {ref['key']}"
    return env


# The settings each container's process reads (the init containers run `steno migrate`).
SETTINGS_OF: dict[str, type[ServiceSettings]] = {
    "gateway": GatewaySettings,
    "transcriber": TranscriberSettings,
    "janitor": JanitorSettings,
    "migrate": ServiceSettings,
    "wait-for-schema": ServiceSettings,
}
# Every variable some Steno process reads.
SETTINGS = DevSettings.env_names()


def steno_containers(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    for workload, pod in pod_templates(objects):
        if is_steno(pod):
            for spec in all_containers(pod):
                yield workload, spec


def test_every_variable_the_manifests_set_is_a_setting(built: list[Obj]) -> None:
    config = object_data(built, "ConfigMap", "steno-config")
    assert config
    assert set(config) - SETTINGS == set()
    assert all(k.startswith("STENO_") for k in config)
    containers = list(steno_containers(built))
    # Four workloads; the gateway, transcriber and janitor have an init container too.
    assert len(containers) == 7
    for workload, spec in containers:
        env = environment(built, spec)
        where = f"{workload['metadata']['name']}/{spec['name']}"
        unknown = {name for name in env if name not in SETTINGS and name not in OTHER_ENV}
        assert unknown == set(), where
        # And the values are good ones: the settings of the container's process validate.
        with pytest.MonkeyPatch.context() as patch:
            for name in [name for name in os.environ if name.startswith("STENO_")]:
                patch.delenv(name)
            for name, value in env.items():
                patch.setenv(name, "external" if isinstance(value, External) else value)
            SETTINGS_OF[spec["name"]]()


# What each service cannot run without (it would fall back to an embedded default that
# cannot work across pods, or refuse to start).
NEEDED = [
    "STENO_DATABASE_URL",
    "STENO_AMQP_URL",
    "STENO_S3_ENDPOINT",
    "STENO_S3_ACCESS_KEY",
    "STENO_S3_SECRET_KEY",
]


def needed_by(container_name: str) -> list[str]:
    return NEEDED if container_name in ("gateway", "transcriber", "janitor") else NEEDED[:1]


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_each_service_gets_what_it_cannot_run_without(
    builds: dict[str, list[Obj]], name: str
) -> None:
    objects = builds[name]
    for workload, spec in steno_containers(objects):
        env = environment(objects, spec)
        where = f"{name}: {workload['metadata']['name']}/{spec['name']}"
        for variable in needed_by(spec["name"]):
            value = env.get(variable)
            assert value, f"{where} has no {variable}"
            if name == "dev":
                assert isinstance(value, str), f"{where}: {variable} from outside the build"
            if variable in ("STENO_DATABASE_URL", "STENO_AMQP_URL") or "_KEY" in variable:
                # Credentials come from the Secret, never from the ConfigMap.
                refs = [v for v in spec.get("env", []) if v["name"] == variable]
                assert refs, f"{where}: {variable} is not from the Secret"
                ref = refs[0]["valueFrom"]["secretKeyRef"]
                assert (ref["name"], ref["key"]) == (SECRET, variable), where
                assert not ref.get("optional"), where


def test_the_dev_secret_points_at_the_dev_services(builds: dict[str, list[Obj]]) -> None:
    dev = builds["dev"]
    secret = object_data(dev, "Secret", SECRET)
    config = object_data(dev, "ConfigMap", "steno-config")
    assert secret and config

    def service_port(host: str | None, port: int | None) -> None:
        assert host and port, (host, port)
        ports = [p["port"] for p in find(dev, "Service", host)["spec"]["ports"]]
        assert port in ports, f"Service {host} has no port {port}"

    database = urlsplit(secret["STENO_DATABASE_URL"])
    service_port(database.hostname, database.port)
    assert (database.username, database.password, database.path) == (
        secret["POSTGRES_USER"],
        secret["POSTGRES_PASSWORD"],
        f"/{secret['POSTGRES_DB']}",
    )
    for key in ("STENO_AMQP_URL", "RABBITMQ_MANAGEMENT_URL"):
        broker = urlsplit(secret[key])
        service_port(broker.hostname, broker.port)
        assert (broker.username, broker.password) == (
            secret["RABBITMQ_DEFAULT_USER"],
            secret["RABBITMQ_DEFAULT_PASS"],
        )
    host, port = config["STENO_S3_ENDPOINT"].split(":")
    service_port(host, int(port))
    minio = environment(dev, container(dev, "StatefulSet", "minio", "minio"))
    assert (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]) == (
        secret["STENO_S3_ACCESS_KEY"],
        secret["STENO_S3_SECRET_KEY"],
    )
    bucket_job = container(dev, "Job", "minio-create-bucket", "mc")
    env = environment(dev, bucket_job)
    assert env["BUCKET"] == config["STENO_S3_BUCKET"]
    assert "dev/$(BUCKET)" in bucket_job["args"]
    alias = urlsplit(str(env["MC_HOST_dev"]))
    assert (alias.hostname, alias.port) == (host, int(port))
    assert alias.username == "$(MINIO_ROOT_USER)" and alias.password == "$(MINIO_ROOT_PASSWORD)"


# --- ports, probes, grace periods ----------------------------------------------------------


def named_port(spec: Obj, name: str) -> int:
    ports = [p["containerPort"] for p in spec.get("ports", []) if p.get("name") == name]
    assert len(ports) == 1, f"{spec['name']} has {len(ports)} ports named {name}"
    return int(ports[0])


def target_port(service: Obj, port_name: str, pod_spec: Obj) -> int:
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == port_name]
    target = port.get("targetPort", port["port"])
    return named_port(pod_spec, target) if isinstance(target, str) else int(target)


def effective(env: Mapping[str, EnvValue], variable: str, default: int) -> int:
    value = env.get(variable)
    return default if value is None else int(str(value))


def test_ports_and_probes_match_the_code(built: list[Obj]) -> None:
    for kind, name, main, module in [(*GATEWAY, gateway), (*TRANSCRIBER, transcriber)]:
        spec = container(built, kind, name, main)
        env = environment(built, spec)
        grpc_port = effective(env, "STENO_GRPC_PORT", module.DEFAULT_GRPC_PORT)
        metrics_port = effective(env, "STENO_METRICS_PORT", module.DEFAULT_METRICS_PORT)
        assert named_port(spec, "grpc" if main == "gateway" else "health") == grpc_port
        assert named_port(spec, "metrics") == metrics_port
        # Over TLS the kubelet cannot speak gRPC health; it checks that the port listens.
        kind_of_probe = "tcpSocket" if "STENO_TLS_CERT_FILE" in env else "grpc"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert spec[probe][kind_of_probe]["port"] == grpc_port, f"{name} {probe}"
            assert "service" not in spec[probe][kind_of_probe]  # the server's overall health
        annotations = pod_template(find(built, kind, name))["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(metrics_port)
        service = find(built, "Service", name)
        assert target_port(service, "metrics", spec) == metrics_port
        if main == "gateway":
            assert target_port(service, "grpc", spec) == grpc_port
            (api,) = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
            assert api["port"] == 50051
            http_port = effective(env, "STENO_HTTP_PORT", GatewaySettings().http_port)
            assert named_port(spec, "http") == http_port
            assert target_port(service, "http", spec) == http_port
            (http,) = [p for p in service["spec"]["ports"] if p["name"] == "http"]
            assert http["port"] == 8080
    assert gateway.DEFAULT_GRPC_PORT == 50051 and transcriber.DEFAULT_GRPC_PORT == 50052


def test_services_have_time_to_stop_and_resources(built: list[Obj]) -> None:
    gateway_pod = pod_template(find(built, "Deployment", "steno-gateway"))["spec"]
    assert gateway_pod["terminationGracePeriodSeconds"] > gateway.SHUTDOWN_GRACE
    transcriber_pod = pod_template(find(built, "Deployment", "steno-transcriber"))["spec"]
    assert transcriber_pod["terminationGracePeriodSeconds"] >= 600 > HAND_BACK_TIMEOUT
    for workload, spec in steno_containers(built):
        resources = spec.get("resources", {})
        where = f"{workload['metadata']['name']}/{spec['name']}"
        assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
        assert "memory" in resources.get("limits", {}), where
    limits = container(built, *TRANSCRIBER)["resources"]["limits"]
    assert {"cpu", "memory"} <= set(limits)


def test_the_janitor_cronjob_and_the_migration_job(built: list[Obj]) -> None:
    cron = find(built, "CronJob", "steno-janitor")["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    assert cron["startingDeadlineSeconds"] > 0
    assert cron["successfulJobsHistoryLimit"] > 0 and cron["failedJobsHistoryLimit"] > 0
    job = cron["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] > 0 and job["backoffLimit"] >= 0
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    janitor = container(built, *JANITOR)
    assert janitor["command"] + janitor.get("args", []) == ["python", "-m", "steno.janitor"]
    migrate = container(built, *MIGRATE)
    assert migrate["command"] + migrate.get("args", []) == ["steno", "migrate"]
    assert image_name(migrate["image"]) == "steno-janitor"
    # Every service waits for the migration: an init container waits for the schema.
    for kind, name, _ in SERVICES:
        (wait,) = pod_template(find(built, kind, name))["spec"]["initContainers"]
        argv = wait["command"] + wait.get("args", [])
        assert argv[:3] == ["steno", "migrate", "--wait"] and float(argv[3]) > 0, name
        assert image_name(wait["image"]) == "steno-janitor"


def test_images_and_their_tags(builds: dict[str, list[Obj]]) -> None:
    expected = {"gateway": "steno-gateway", "transcriber": "steno-transcriber"}
    tags = {"dev": "dev", "prod": "0.1.0", "base+keda": None}
    for name, objects in builds.items():
        for _, spec in steno_containers(objects):
            assert image_name(spec["image"]) == expected.get(spec["name"], "steno-janitor")
            assert image_tag(spec["image"]) == tags[name], f"{name}: {spec['image']}"


# --- references ---------------------------------------------------------------------------


def selects(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """Whether a label selector picks an object with ``labels`` (an empty selector picks
    everything)."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = (
            expression["key"],
            expression["operator"],
            expression.get("values", []),
        )
        present = key in labels
        if (
            (operator == "In" and labels.get(key) not in values)
            or (operator == "NotIn" and present and labels[key] in values)
            or (operator == "Exists" and not present)
            or (operator == "DoesNotExist" and present)
        ):
            return False
    return True


def pod_labels(objects: list[Obj]) -> list[Mapping[str, str]]:
    return [pod["metadata"].get("labels", {}) for _, pod in pod_templates(objects)]


def test_every_reference_resolves(built: list[Obj]) -> None:
    labels = pod_labels(built)
    for obj in built:
        kind, spec = obj["kind"], obj.get("spec", {})
        where = f"{kind}/{obj['metadata']['name']}"
        if kind == "Service":
            assert any(selects({"matchLabels": spec["selector"]}, pod) for pod in labels), where
        if kind in ("PodDisruptionBudget", "NetworkPolicy"):
            selector = spec["selector"] if kind == "PodDisruptionBudget" else spec["podSelector"]
            assert any(selects(selector, pod) for pod in labels), where
        if kind == "HorizontalPodAutoscaler":
            target = spec["scaleTargetRef"]
            assert lookup(built, target["kind"], target["name"]), where
        if kind == "ScaledObject":
            assert lookup(
                built,
                spec["scaleTargetRef"].get("kind", "Deployment"),
                spec["scaleTargetRef"]["name"],
            ), where
            for trigger in spec["triggers"]:
                assert lookup(
                    built, "TriggerAuthentication", trigger["authenticationRef"]["name"]
                ), where
        if kind == "TriggerAuthentication":
            for ref in spec["secretTargetRef"]:
                data = object_data(built, "Secret", ref["name"])
                external = data is None and ref["name"] == SECRET
                assert external or (data and ref["key"] in data), where
    for workload, pod in pod_templates(built):
        where = workload["metadata"]["name"]
        spec = pod["spec"]
        account = spec.get("serviceAccountName")
        assert account is None or lookup(built, "ServiceAccount", account), where
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        for volume in volumes.values():
            if "configMap" in volume:
                assert lookup(built, "ConfigMap", volume["configMap"]["name"]), where
        for spec_ in all_containers(pod):
            environment(built, spec_)  # every ConfigMap and Secret it names is there
            for mount in spec_.get("volumeMounts", []):
                assert mount["name"] in volumes or mount["name"] in claims, where


def test_the_transcriber_scales_on_the_queue_it_consumes(builds: dict[str, list[Obj]]) -> None:
    for name in ("prod", "base+keda"):
        objects = builds[name]
        scaled = find(objects, "ScaledObject", "steno-transcriber")["spec"]
        assert scaled["scaleTargetRef"]["name"] == "steno-transcriber"
        assert scaled["minReplicaCount"] >= 1  # someone fails the dead-lettered jobs
        (trigger,) = scaled["triggers"]
        assert trigger["type"] == "rabbitmq"
        metadata = trigger["metadata"]
        assert metadata["mode"] == "QueueLength"
        queue = environment(objects, container(objects, *TRANSCRIBER))["STENO_AMQP_QUEUE"]
        assert metadata["queueName"] == queue == BrokerSettings.model_fields["queue"].default
        # The management API counts the jobs being transcribed (unacknowledged) too.
        assert metadata["protocol"] == "http"
        assert "host" not in metadata  # credentials: only through the TriggerAuthentication
        auth = find(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        (ref,) = auth["spec"]["secretTargetRef"]
        assert (ref["parameter"], ref["name"], ref["key"]) == (
            "host",
            SECRET,
            "RABBITMQ_MANAGEMENT_URL",
        )
        # KEDA owns the replica count.
        assert "replicas" not in find(objects, "Deployment", "steno-transcriber")["spec"]
    # The dev Secret has the key too, should someone turn KEDA on there.
    dev_secret = object_data(builds["dev"], "Secret", SECRET)
    assert dev_secret and "RABBITMQ_MANAGEMENT_URL" in dev_secret
    assert find(builds["dev"], "Deployment", "steno-transcriber")["spec"]["replicas"] == 1
    gateway_min = {
        name: find(builds[name], "HorizontalPodAutoscaler", "steno-gateway")["spec"]["minReplicas"]
        for name in ("dev", "prod")
    }
    assert gateway_min["prod"] > gateway_min["dev"]
    assert find(builds["prod"], "ScaledObject", "steno-transcriber")["spec"]["minReplicaCount"] > 1


# --- security -------------------------------------------------------------------------------


# Containers whose root filesystem is writable, by build: in dev, Tilt's live update writes
# changed Python files into the two long-running services.
WRITABLE_ROOT = {"dev": {"steno-gateway/gateway", "steno-transcriber/transcriber"}}


def test_every_pod_and_container_is_locked_down(
    request: pytest.FixtureRequest, built: list[Obj]
) -> None:
    writable = WRITABLE_ROOT.get(request.node.callspec.params["built"], set())
    for workload, pod in pod_templates(built):
        spec = pod["spec"]
        where = workload["metadata"]["name"]
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, where
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        if is_steno(pod):
            assert context["runAsUser"] == STENO_UID, where
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for spec_ in all_containers(pod):
            inner = spec_["securityContext"]
            at = f"{where}/{spec_['name']}"
            assert inner["runAsNonRoot"] is True, at
            assert inner["allowPrivilegeEscalation"] is False, at
            assert inner["readOnlyRootFilesystem"] is (at not in writable), at
            assert inner["capabilities"] == {"drop": ["ALL"]}, at
            assert inner["seccompProfile"] == {"type": "RuntimeDefault"}, at
            assert inner.get("privileged") in (None, False), at
            assert inner.get("runAsUser", context.get("runAsUser")) != 0, at
            if is_steno(pod):
                assert inner["runAsUser"] == STENO_UID, at
            (tmp,) = [m for m in spec_.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            assert "emptyDir" in volumes[tmp["name"]], at


def test_persistent_volumes_are_chowned_only_when_new(built: list[Obj]) -> None:
    """fsGroup re-applied recursively on every start would make RabbitMQ's .erlang.cookie
    group-readable (Erlang then refuses to start) and Postgres' data directory group-writable:
    a pod that keeps data on a PersistentVolumeClaim changes its ownership only while new."""
    for workload, pod in pod_templates(built):
        claims = workload["spec"].get("volumeClaimTemplates", [])
        context = pod["spec"]["securityContext"]
        where = workload["metadata"]["name"]
        if claims and "fsGroup" in context:
            assert context.get("fsGroupChangePolicy") == "OnRootMismatch", where


# --- network policies -----------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    """One end of a connection: a pod of this namespace (with its labels), a pod of another
    namespace (with its labels and its namespace's), or something outside the cluster."""

    where: Literal["namespace", "cluster", "outside"]
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)


def other_namespace(name: str) -> Party:
    """A pod of the namespace ``name``, with the label every namespace has."""
    return Party("cluster", namespace_labels={"kubernetes.io/metadata.name": name})


OUTSIDE = Party("outside")
# Any other namespace: one no policy names.
CLUSTER = other_namespace("elsewhere")
# The KEDA operator, where KEDA's Helm chart installs it.
KEDA = other_namespace("keda")


def peer_admits(peer: Obj, party: Party) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        # Only the whole internet is modelled.
        return (
            party.where == "outside"
            and block["cidr"] in ("0.0.0.0/0", "::/0")
            and not block.get("except")
        )
    pods, namespaces = peer.get("podSelector"), peer.get("namespaceSelector")
    if namespaces is None:
        return party.where == "namespace" and selects(pods, party.labels)
    if party.where == "outside" or (namespaces != {} and party.where == "namespace"):
        return False
    if party.where == "cluster" and not selects(namespaces, party.namespace_labels):
        return False
    return pods is None or selects(pods, party.labels)


def ports_admit(ports: list[Obj] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:
            return True
        assert isinstance(entry["port"], int), "named ports are not modelled"
        if entry["port"] <= port <= entry.get("endPort", entry["port"]):
            return True
    return False


def policies(objects: list[Obj], labels: Mapping[str, str], direction: str) -> list[Obj]:
    found = []
    for policy in objects:
        if policy["kind"] != "NetworkPolicy":
            continue
        spec = policy["spec"]
        types = spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]
        if direction in types and selects(spec["podSelector"], labels):
            found.append(spec)
    return found


def allowed(
    objects: list[Obj], source: Party, target: Party, port: int, protocol: str = "TCP"
) -> bool:
    """Whether the network policies in ``objects`` let ``source`` connect to ``target``."""
    for party, direction, peers, other in (
        (source, "Egress", "to", target),
        (target, "Ingress", "from", source),
    ):
        if party.where != "namespace":
            continue
        isolating = policies(objects, party.labels, direction)
        rules = [rule for spec in isolating for rule in spec.get(direction.lower(), [])]
        if isolating and not any(
            ports_admit(rule.get("ports"), port, protocol)
            and (peers not in rule or any(peer_admits(p, other) for p in rule[peers]))
            for rule in rules
        ):
            return False
    return True


def pod_party(objects: list[Obj], kind: str, name: str) -> Party:
    return Party("namespace", pod_template(find(objects, kind, name))["metadata"]["labels"])


PROBES = [
    (53, "UDP"),
    (53, "TCP"),
    (22, "TCP"),
    (80, "TCP"),
    (443, "TCP"),
    (5432, "TCP"),
    (5671, "TCP"),
    (5672, "TCP"),
    (6379, "TCP"),
    (8080, "TCP"),
    (9000, "TCP"),
    (15672, "TCP"),
]
BASICS = {(53, "UDP"), (53, "TCP"), (5432, "TCP")}
# The gateway's ports open to clients: gRPC and the OpenAI-compatible HTTP API.
API_PORTS = (gateway.DEFAULT_GRPC_PORT, 8080)
# What each Steno workload may connect to, outside the cluster or in it (by port), and in
# dev which of the in-cluster services.
EGRESS = {
    GATEWAY: BASICS | {(5672, "TCP"), (9000, "TCP")},
    TRANSCRIBER: BASICS | {(5672, "TCP"), (9000, "TCP"), (443, "TCP")},
    JANITOR: BASICS | {(5672, "TCP"), (9000, "TCP")},
    MIGRATE: BASICS,
}
# Prod's managed services: S3 over HTTPS, AMQPS.
MANAGED = {(443, "TCP"), (5671, "TCP")}
DEV_SERVICES = {"postgres": 5432, "rabbitmq": 5672, "minio": 9000}


@pytest.mark.parametrize("name", BUILDS)
def test_network_policies_let_through_what_is_needed_and_no_more(
    builds: dict[str, list[Obj]], name: str
) -> None:
    objects = builds[name]
    for workload, pod in pod_templates(objects):
        labels = pod["metadata"]["labels"]
        where = workload["metadata"]["name"]
        assert policies(objects, labels, "Ingress"), f"{where} takes connections from anyone"
        party = Party("namespace", labels)
        for spec in all_containers(pod):
            for port in spec.get("ports", []):
                number = port["containerPort"]
                public = where == "steno-gateway" and number in API_PORTS
                scraped = number in (gateway.DEFAULT_METRICS_PORT, transcriber.DEFAULT_METRICS_PORT)
                at = f"{where}:{number}"
                assert allowed(objects, OUTSIDE, party, number) == public, at
                assert allowed(objects, CLUSTER, party, number) == (public or scraped), at
        if where != "steno-gateway":
            assert not allowed(objects, OUTSIDE, party, 8080)
    for (kind, workload, _), expected in EGRESS.items():
        source = pod_party(objects, kind, workload)
        reachable = {probe for probe in PROBES if allowed(objects, source, OUTSIDE, *probe)}
        assert reachable == (expected | MANAGED if name == "prod" else expected), workload
        if name != "dev":
            continue
        for service, port in DEV_SERVICES.items():
            target = pod_party(objects, "StatefulSet", service)
            needed = (port, "TCP") in expected
            assert allowed(objects, source, target, port) == needed, f"{workload} -> {service}"
        rabbitmq = pod_party(objects, "StatefulSet", "rabbitmq")
        assert not allowed(objects, source, rabbitmq, 15672)
    if name == "dev":
        # KEDA (should its component be used in dev) reads the queue's length from RabbitMQ's
        # management API, and reaches nothing else.
        rabbitmq = pod_party(objects, "StatefulSet", "rabbitmq")
        assert allowed(objects, KEDA, rabbitmq, 15672)
        assert not allowed(objects, KEDA, rabbitmq, 5672)
        assert not allowed(objects, KEDA, pod_party(objects, "StatefulSet", "postgres"), 5432)
        bucket_job = pod_party(objects, "Job", "minio-create-bucket")
        assert allowed(objects, bucket_job, pod_party(objects, "StatefulSet", "minio"), 9000)
        postgres = pod_party(objects, "StatefulSet", "postgres")
        assert not allowed(objects, bucket_job, postgres, 5432)


# --- the commands, run for real -----------------------------------------------------------


@pytest.fixture
def unmigrated_database() -> Iterator[str]:
    """A database of this test's own, with nothing in it (asyncpg URL)."""
    name = f"steno_deploy_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_URL)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield urlsplit(POSTGRES_URL)._replace(scheme="postgresql+asyncpg", path=f"/{name}").geturl()
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Command:
    """A container's command line and environment as the dev manifests give them."""

    argv: list[str]
    env: dict[str, str]


def local_command(
    objects: list[Obj],
    kind: str,
    name: str,
    container_name: str,
    here: Mapping[str, str],
    tmp: Path,
) -> Command:
    """The container's command and environment from the built ``objects``, with the
    variables in ``here`` (hosts, credentials, bucket, queue) set to this machine's test
    services instead, and the paths of the container's volumes to directories under
    ``tmp``."""
    spec = container(objects, kind, name, container_name)
    env = environment(objects, spec)
    values = {k: v for k, v in env.items() if isinstance(v, str)}
    assert values.keys() == env.keys()
    missing = set(needed_by(container_name)) - values.keys()
    assert not missing, f"{name}/{container_name} lacks {missing}"
    values.update({k: v for k, v in here.items() if k in values})
    for mount in spec.get("volumeMounts", []):
        local = tmp / mount["name"]
        local.mkdir(exist_ok=True)
        for k, v in values.items():
            if v == mount["mountPath"] or v.startswith(mount["mountPath"] + "/"):
                values[k] = str(local) + v[len(mount["mountPath"]) :]
    path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    program = shutil.which(spec["command"][0], path=path)
    assert program and Path(program).parent == VENV_BIN, (
        f"{spec['command'][0]} is not in {VENV_BIN}"
    )
    return Command(
        spec["command"] + spec.get("args", []),
        {"PATH": path, "HOME": str(tmp), "LANG": "C.UTF-8", **values},
    )


def run(command: Command, tmp: Path, **changes: str) -> subprocess.CompletedProcess[str]:
    argv = list(command.argv)
    for option, value in changes.items():
        argv[argv.index(option) + 1] = value
    return subprocess.run(
        argv, env=command.env, cwd=tmp, capture_output=True, text=True, timeout=120
    )


async def alembic_revision(url: str) -> str:
    connection = await asyncpg.connect(urlsplit(url)._replace(scheme="postgresql").geturl())
    try:
        return str(await connection.fetchval("SELECT version_num FROM alembic_version"))
    finally:
        await connection.close()


async def seed_expired_job(url: str, object_key: str) -> None:
    engine = create_engine(url)
    try:
        long_ago = datetime.now(UTC) - timedelta(days=3)
        await SqlJobRepository(engine).add(
            make_job(
                object_key=object_key,
                state=JobState.COMPLETED,
                create_time=long_ago,
                complete_time=long_ago,
                audio_expire_time=long_ago + timedelta(hours=1),
                size_bytes=5,
            )
        )
    finally:
        await engine.dispose()


def test_the_dev_migration_wait_and_janitor_commands_run(
    builds: dict[str, list[Obj]],
    settings: DevSettings,
    s3_server: S3Server,
    unmigrated_database: str,
    tmp_path: Path,
) -> None:
    dev = builds["dev"]
    assert settings.broker.url and settings.store.endpoint
    here = {
        "STENO_DATABASE_URL": unmigrated_database,
        "STENO_AMQP_URL": settings.broker.url.get_secret_value(),
        "STENO_AMQP_QUEUE": settings.broker.queue,
        "STENO_S3_ENDPOINT": settings.store.endpoint,
        "STENO_S3_ACCESS_KEY": s3_server.access_key,
        "STENO_S3_SECRET_KEY": s3_server.secret_key,
        "STENO_S3_BUCKET": settings.store.bucket,
    }
    waits = [
        local_command(dev, kind, name, "wait-for-schema", here, tmp_path)
        for kind, name, _ in SERVICES
    ]
    migrate = local_command(dev, *MIGRATE, here, tmp_path)
    janitor = local_command(dev, *JANITOR, here, tmp_path)

    # Before the migration, the services' init containers wait, and give up.
    for wait in waits:
        done = run(wait, tmp_path, **{"--wait": "0.5"})
        assert done.returncode != 0, done.stdout
        assert "steno migrate --wait: the database has not been migrated" in done.stderr

    done = run(migrate, tmp_path)
    assert done.returncode == 0, done.stderr
    assert asyncio.run(alembic_revision(unmigrated_database)) == head_revision()

    for wait in waits:
        done = run(wait, tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"the database schema is at {head_revision()}" in done.stdout

    # The janitor deletes the audio of a job whose retention ran out.
    client = s3_server.client()  # type: ignore[no-untyped-call]
    client.create_bucket(Bucket=settings.store.bucket)
    client.put_object(Bucket=settings.store.bucket, Key="audio/expired", Body=b"audio")
    asyncio.run(seed_expired_job(unmigrated_database, "audio/expired"))

    done = run(janitor, tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary == {
        "scanned": 1,
        "deleted": 1,
        "failed": 0,
        "bytes_freed": 5,
        "aborted_uploads": 0,
        "published": 0,
        "requeued": 0,
        "webhooks_requeued": 0,
        "errors": [],
    }
    assert client.list_objects_v2(Bucket=settings.store.bucket).get("KeyCount", 0) == 0
