"""Checks of deploy/ without a cluster: the Kubernetes manifests (base and overlays, rendered by
tests/deploy/kustomize.py) and the Dockerfile.

Each service Deployment must run its module, read only settings that exist, listen where its
probes and Service look, and get store and blob URLs the store factories accept. Where kubectl
is installed, the pure-Python rendering is compared with ``kubectl kustomize``.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("yaml", reason="PyYAML is not installed (it is a dev extra)")

from shipyard_gateway.settings import GatewaySettings
from shipyard_lineage.settings import LineageSettings
from shipyard_repo.settings import RepoSettings
from shipyard_run.settings import RunSettings
from shipyard_serving.settings import ServingSettings

from shipyard.kit.assertions import parse_key
from shipyard.kit.blob.factory import open_blob_store
from shipyard.kit.settings import Settings
from shipyard.kit.store.factory import open_document_store
from tests.deploy.kustomize import (
    KNOWN_KINDS,
    KUSTOMIZE,
    Doc,
    canonical,
    container_argv,
    dockerfile,
    find,
    kustomization,
    kustomization_dirs,
    load_docs,
    of_kind,
    pod_spec,
    render,
    resolve_port,
    secret_data,
    workloads_selected,
)

# Each process's one name -> its gRPC port (the gateway's public one for the gateway).
SERVICES = {"repo-svc": 50061, "run-svc": 50062, "serving-svc": 50063, "lineage-svc": 50064,
            "gateway": 50051}
# Each process's one name -> the settings class it builds (which says which module it is).
SETTINGS: dict[str, type[Settings]] = {"repo-svc": RepoSettings, "run-svc": RunSettings,
                                       "serving-svc": ServingSettings, "lineage-svc": LineageSettings,
                                       "gateway": GatewaySettings}
BLOB_USERS = ("repo-svc", "run-svc", "serving-svc", "gateway")  # the gateway streams blobs over HTTP
# The embedded-like overlay's claims keep the names older versions gave them: a claim cannot be
# renamed, and a new name would be a new, empty volume.
DATA_CLAIMS = {"repo-svc": "shipyard-repo-data", "run-svc": "shipyard-run-data",
               "serving-svc": "shipyard-serving-data", "lineage-svc": "shipyard-lineage-data",
               "gateway": "shipyard-gateway-data"}
VARIANTS = {
    "base": KUSTOMIZE / "base",
    "embedded-like": KUSTOMIZE / "overlays" / "embedded-like",
    "production": KUSTOMIZE / "overlays" / "production",
}
# Every SHIPYARD_ variable some process reads.
SETTINGS_ENV = {f"SHIPYARD_{name.upper()}" for settings in SETTINGS.values()
                for name in settings.model_fields}
YAML_FILES = sorted([*KUSTOMIZE.rglob("*.yaml"), *KUSTOMIZE.rglob("*.yml")])


def _id(path: Path) -> str:
    return str(path.relative_to(KUSTOMIZE))


@pytest.fixture(params=list(VARIANTS), ids=list(VARIANTS))
def variant(request: pytest.FixtureRequest) -> str:
    return request.param


def deployment(docs: list[Doc], service: str) -> Doc:
    found = find(docs, "Deployment", service)
    assert found is not None, f"no Deployment {service}"
    return found


def main_container(docs: list[Doc], service: str) -> Doc:
    containers = pod_spec(deployment(docs, service))["containers"]
    assert len(containers) == 1, f"{service}: expected one container"
    assert containers[0]["name"] == service, f"{service}: its container is not named after it"
    return containers[0]


def effective_env(docs: list[Doc], container: Doc, where: str) -> dict[str, str]:
    """The container's environment, with every ConfigMap/Secret reference resolved (and checked)."""

    def source(kind: str, name: str) -> dict[str, str]:
        doc = find(docs, kind, name)
        assert doc is not None, f"{where}: refers to {kind} {name}, which is not in the manifests"
        return secret_data(doc) if kind == "Secret" else dict(doc.get("data") or {})

    env: dict[str, str] = {}
    for ref in container.get("envFrom", []):
        if "configMapRef" in ref:
            env.update(source("ConfigMap", ref["configMapRef"]["name"]))
        else:
            env.update(source("Secret", ref["secretRef"]["name"]))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        value_from = var["valueFrom"]
        for ref_key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            if ref_key in value_from:
                ref = value_from[ref_key]
                values = source(kind, ref["name"])
                assert ref["key"] in values, (
                    f"{where}: {var['name']} wants key {ref['key']!r} of {kind} {ref['name']}")
                env[var["name"]] = values[ref["key"]]
    return env


def settings_of(service: str, env: dict[str, str]) -> Settings:
    """The settings ``service`` builds given ``env`` (init values win over this process's env)."""
    values: dict[str, Any] = {k.removeprefix("SHIPYARD_").lower(): v for k, v in env.items()
                              if k.startswith("SHIPYARD_")}
    return SETTINGS[service](**values)


def mount_for(docs: list[Doc], workload: Doc, container: Doc, path: str) -> Doc | None:
    """The volume (as declared in the pod) whose mount holds ``path``: the deepest mount wins."""
    mounts = [m for m in container.get("volumeMounts", [])
              if PurePosixPath(path).is_relative_to(m["mountPath"])]
    if not mounts:
        return None
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    templates = {t["metadata"]["name"]: {"name": t["metadata"]["name"], "volumeClaimTemplate": t}
                 for t in workload["spec"].get("volumeClaimTemplates", [])}
    return volumes.get(mount["name"]) or templates.get(mount["name"])


def service_port(docs: list[Doc], address: str) -> tuple[Doc, int]:
    """The Service and port a host:port address inside the namespace points at."""
    host, _, port = address.rpartition(":")
    service = find(docs, "Service", host)
    assert service is not None, f"{address}: no Service {host}"
    ports = [p["port"] for p in service["spec"]["ports"]]
    assert int(port) in ports, f"{address}: Service {host} has no port {port}"
    return service, int(port)


# --- every file -----------------------------------------------------------------------------


def test_there_are_manifests() -> None:
    assert YAML_FILES, "no YAML under deploy/kustomize"
    assert set(VARIANTS.values()) <= set(kustomization_dirs())


@pytest.mark.parametrize("path", YAML_FILES, ids=_id)
def test_each_document_is_a_known_kind_with_a_name(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path}: no documents"
    for doc in docs:
        kind = doc.get("kind")
        assert kind in KNOWN_KINDS, f"{path}: unknown kind {kind!r}"
        wanted = KNOWN_KINDS[kind]
        assert doc.get("apiVersion") == wanted, f"{path}: {kind} needs apiVersion {wanted}"
        if kind != "Kustomization":
            assert doc.get("metadata", {}).get("name"), f"{path}: {kind} without metadata.name"


@pytest.mark.parametrize("directory", kustomization_dirs(), ids=_id)
def test_kustomization_lists_exactly_its_files(directory: Path) -> None:
    spec = kustomization(directory)
    listed: set[Path] = set()
    for entry in [*spec.get("resources", []), *(p["path"] for p in spec.get("patches", []) if "path" in p)]:
        path = (directory / entry).resolve()
        assert path.exists(), f"{directory}: {entry} does not exist"
        if path.is_dir():
            assert (path / "kustomization.yaml").exists(), f"{directory}: {entry} is no kustomization"
        else:
            listed.add(path)
    present = {p.resolve() for p in [*directory.glob("*.yaml"), *directory.glob("*.yml")]
               if p.name != "kustomization.yaml"}
    assert present - listed == set(), f"{directory}: files not in kustomization.yaml"
    assert listed - present == set(), f"{directory}: listed files outside the directory"


def patch_files(directory: Path) -> list[Path]:
    """The files a kustomization's `patches:` entries name."""
    return [directory / p["path"] for p in kustomization(directory).get("patches", []) if "path" in p]


@pytest.mark.parametrize("directory", kustomization_dirs(), ids=_id)
def test_every_patch_file_holds_one_document(directory: Path) -> None:
    """kubectl 1.30 and older refuse a `patches:` file holding several YAML documents."""
    several = {path.name: count for path in patch_files(directory) if (count := len(load_docs(path))) != 1}
    assert not several, f"{_id(directory)}: patch files with other than one document: {several}"


# --- every variant (base and overlays, rendered) ---------------------------------------------


def test_resource_names_are_unique(variant: str) -> None:
    docs = render(VARIANTS[variant])
    keys = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys))
    assert find(docs, "Namespace", "shipyard") is not None
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"shipyard"}


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_runs_the_service_module(variant: str, service: str) -> None:
    container = main_container(render(VARIANTS[variant]), service)
    module = SETTINGS[service].__module__.partition(".")[0]
    assert container_argv(container) == ["python", "-m", module]
    assert importlib.util.find_spec(module) is not None, f"{module} is not importable"
    assert importlib.util.find_spec(f"{module}.__main__") is not None, f"{module} has no __main__"


def test_shipyard_settings_exist(variant: str) -> None:
    docs = render(VARIANTS[variant])
    config = find(docs, "ConfigMap", "shipyard-config")
    assert config is not None
    assert set(config["data"]) <= SETTINGS_ENV, "ConfigMap keys that are no Settings field"
    for workload in [*of_kind(docs, "Deployment"), *of_kind(docs, "StatefulSet")]:
        for container in pod_spec(workload)["containers"]:
            where = f"{workload['metadata']['name']}/{container['name']}"
            env = effective_env(docs, container, where)
            unknown = {k for k in env if k.startswith("SHIPYARD_")} - SETTINGS_ENV
            assert not unknown, f"{where}: {sorted(unknown)} are no Settings fields"


@pytest.mark.parametrize("service", SERVICES)
def test_settings_make_a_working_process(variant: str, service: str) -> None:
    docs = render(VARIANTS[variant])
    workload = deployment(docs, service)
    container = main_container(docs, service)
    settings = settings_of(service, effective_env(docs, container, service))
    assert settings.service == service
    host, _, port = settings.grpc_listen.rpartition(":")
    assert host not in ("127.0.0.1", "localhost", "::1"), "the kubelet probes the pod IP, not loopback"
    assert resolve_port(container, int(port)) == SERVICES[service] == int(port)
    service_port(docs, settings.nats_url.removeprefix("nats://"))

    store_url = settings.default_store_url()
    open_document_store(store_url)  # raises on a URL the factory refuses
    if store_url.startswith("sqlite:"):
        path = urlsplit(store_url).path
        assert mount_for(docs, workload, container, path) is not None, f"{path} is on the read-only root"
        assert PurePosixPath(path).parent == PurePosixPath(settings.service_dir()), (
            f"{path} is not in the service's own folder (the one it moves its former folder to)")
    if service in BLOB_USERS:
        blob_url = settings.default_blob_url()
        open_blob_store(blob_url)
        if blob_url.startswith("file:"):
            path = urlsplit(blob_url).path
            assert mount_for(docs, workload, container, path) is not None, f"{path} is on the read-only root"

    if isinstance(settings, GatewaySettings):
        assert resolve_port(container, int(settings.http_listen.rpartition(":")[2])) == 8080
        assert settings.admin_token_file is not None
        volume = mount_for(docs, workload, container, str(settings.admin_token_file))
        assert volume is not None and "emptyDir" in volume, "the admin token needs a writable volume"
        for name in ("repo", "run", "serving", "lineage"):
            target, port_number = service_port(docs, getattr(settings, f"{name}_addr"))
            (selected,) = workloads_selected(docs, target["spec"]["selector"])
            assert target["metadata"]["name"] == selected["metadata"]["name"] == f"{name}-svc"
            assert port_number == SERVICES[f"{name}-svc"]


def test_probes_use_declared_ports(variant: str) -> None:
    docs = render(VARIANTS[variant])
    for workload in [*of_kind(docs, "Deployment"), *of_kind(docs, "StatefulSet")]:
        for container in pod_spec(workload)["containers"]:
            for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = container.get(probe_name)
                if probe is None:
                    continue
                (handler,) = [probe[h] for h in ("grpc", "tcpSocket", "httpGet", "exec") if h in probe]
                if "port" in handler:
                    where = f"{workload['metadata']['name']}/{container['name']}"
                    assert resolve_port(container, handler["port"]) is not None, (
                        f"{where}: {probe_name} port {handler['port']} is not declared")


@pytest.mark.parametrize("service", SERVICES)
def test_service_is_ready_by_grpc_health(variant: str, service: str) -> None:
    container = main_container(render(VARIANTS[variant]), service)
    assert container["readinessProbe"]["grpc"]["port"] == SERVICES[service]
    assert "livenessProbe" in container


def test_services_select_workloads_and_their_ports(variant: str) -> None:
    docs = render(VARIANTS[variant])
    for service in of_kind(docs, "Service"):
        name = service["metadata"]["name"]
        selected = workloads_selected(docs, service["spec"].get("selector") or {})
        assert len(selected) == 1, f"Service {name} selects {len(selected)} workloads"
        (container,) = pod_spec(selected[0])["containers"]
        for port in service["spec"]["ports"]:
            assert resolve_port(container, port.get("targetPort", port["port"])) is not None, (
                f"Service {name}: targetPort {port.get('targetPort')} is not a containerPort")
    gateway = find(docs, "Service", "gateway")
    assert gateway is not None
    assert {(p["name"], p["port"]) for p in gateway["spec"]["ports"]} >= {("grpc", 50051), ("http", 8080)}


def test_workloads_select_their_own_pods(variant: str) -> None:
    docs = render(VARIANTS[variant])
    for workload in [*of_kind(docs, "Deployment"), *of_kind(docs, "StatefulSet")]:
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
    for sts in of_kind(docs, "StatefulSet"):
        headless = find(docs, "Service", sts["spec"]["serviceName"])
        assert headless is not None and headless["spec"].get("clusterIP") == "None"


def test_pods_are_locked_down_and_sized(variant: str) -> None:
    docs = render(VARIANTS[variant])
    for workload in [*of_kind(docs, "Deployment"), *of_kind(docs, "StatefulSet")]:
        name = workload["metadata"]["name"]
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"].get("runAsUser", 0) != 0, name
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            tmp = mount_for(docs, workload, container, "/tmp")
            assert tmp is not None and "emptyDir" in tmp, f"{name}: /tmp must be an emptyDir"
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), f"{name}: {bound}"
            mounted = {m["name"] for m in container.get("volumeMounts", [])}
            declared = {v["name"] for v in spec.get("volumes", [])}
            declared |= {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
            assert mounted <= declared, f"{name}: mounts of undeclared volumes {mounted - declared}"
        for volume in spec.get("volumes", []):
            claim = volume.get("persistentVolumeClaim")
            if claim:
                assert find(docs, "PersistentVolumeClaim", claim["claimName"]) is not None, name


def test_nats_runs_jetstream_on_a_volume(variant: str) -> None:
    docs = render(VARIANTS[variant])
    nats = find(docs, "StatefulSet", "shipyard-nats")
    assert nats is not None
    (container,) = pod_spec(nats)["containers"]
    assert re.fullmatch(r"nats:2\.10(\.\d+)*-alpine", container["image"]), container["image"]
    args = container["args"]
    assert "-js" in args
    assert args[args.index("-sd") + 1] == "/data"
    volume = mount_for(docs, nats, container, "/data")
    assert volume is not None and "volumeClaimTemplate" in volume, "/data must be on the PVC template"
    assert resolve_port(container, 4222) == 4222


# --- the overlays ------------------------------------------------------------------------------


def test_embedded_like_is_single_writer_sqlite_on_volumes() -> None:
    docs = render(VARIANTS["embedded-like"])
    for service in SERVICES:
        workload = deployment(docs, service)
        assert workload["spec"]["replicas"] == 1, f"{service}: SQLite has one writer"
        assert workload["spec"]["strategy"]["type"] == "Recreate", f"{service}: no surge pod on SQLite"
        container = main_container(docs, service)
        settings = settings_of(service, effective_env(docs, container, service))
        url = settings.default_store_url()
        assert url.startswith("sqlite:///")
        volume = mount_for(docs, workload, container, urlsplit(url).path)
        assert volume is not None
        assert volume["persistentVolumeClaim"]["claimName"] == DATA_CLAIMS[service]
        if service in BLOB_USERS:
            blob = mount_for(docs, workload, container, urlsplit(settings.default_blob_url()).path)
            assert blob is not None and blob["persistentVolumeClaim"]["claimName"] == "shipyard-blobs"
    nats = find(docs, "StatefulSet", "shipyard-nats")
    assert nats is not None and nats["spec"]["replicas"] == 1


def test_production_scales_out_on_mongodb_s3_and_a_nats_cluster() -> None:
    docs = render(VARIANTS["production"])
    databases = set()
    for service in SERVICES:
        workload = deployment(docs, service)
        assert workload["spec"]["replicas"] >= 2, service
        settings = settings_of(service, effective_env(docs, main_container(docs, service), service))
        store = urlsplit(settings.default_store_url())
        assert store.scheme == "mongodb", service
        assert "replicaSet" in parse_qs(store.query), f"{service}: transactions need a replica set"
        databases.add(store.path.strip("/"))
        if service in BLOB_USERS:
            assert urlsplit(settings.default_blob_url()).scheme == "s3", service
        (budget,) = [p for p in of_kind(docs, "PodDisruptionBudget")
                     if workloads_selected(docs, p["spec"]["selector"]["matchLabels"]) == [workload]]
        assert budget["spec"].get("minAvailable", 0) >= 1 or "maxUnavailable" in budget["spec"]
    assert len(databases) == len(SERVICES), "each service owns its own database"

    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                            "name": "gateway"}
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]

    nats = find(docs, "StatefulSet", "shipyard-nats")
    assert nats is not None
    replicas = nats["spec"]["replicas"]
    assert replicas == 3
    args = pod_spec(nats)["containers"][0]["args"]
    assert "--cluster_name" in args and "--cluster" in args
    assert args[args.index("--server_name") + 1] == "$(POD_NAME)", "JetStream peers need distinct names"
    routes = args[args.index("--routes") + 1].split(",")
    headless = nats["spec"]["serviceName"]
    assert routes == [f"nats://shipyard-nats-{i}.{headless}:6222" for i in range(replicas)]
    assert any(workloads_selected(docs, p["spec"]["selector"]["matchLabels"]) == [nats]
               for p in of_kind(docs, "PodDisruptionBudget")), "no PodDisruptionBudget for NATS"


# --- the image ---------------------------------------------------------------------------------


def test_dockerfile_builds_one_non_root_image_for_every_service() -> None:
    entrypoint, cmd, bases = dockerfile()
    text = (KUSTOMIZE.parent / "docker" / "Dockerfile").read_text()
    assert len(bases) >= 2, "multi-stage"
    assert set(bases) == {"python:3.11-slim"}
    assert "pip install -c requirements-run.lock ." in text, "the image gets the versions make up installs"
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1].split(":")[0].isdigit() and int(users[-1].split(":")[0]) != 0
    assert entrypoint == ["python", "-m"]
    assert len(cmd) == 1 and importlib.util.find_spec(cmd[0]) is not None
    ignore = (KUSTOMIZE.parent / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert "*" in ignore and {"!pyproject.toml", "!src", "!services"} <= set(ignore)
    assert {"!LICENSE", "!requirements-run.lock"} <= set(ignore), "the build needs them (license-files, pins)"


def test_every_process_gets_the_one_internal_key(variant: str) -> None:
    """Calls between the services are signed with the internal key: every pod needs the same one,
    from the Secret, and the committed placeholder is refused (no known key ships)."""
    docs = render(VARIANTS[variant])
    keys = set()
    for service in SERVICES:
        container = main_container(docs, service)
        [ref] = [v["valueFrom"]["secretKeyRef"] for v in container.get("env", [])
                 if v["name"] == "SHIPYARD_INTERNAL_KEY"]
        assert (ref["name"], ref["key"]) == ("shipyard-secrets", "internal-key"), service
        keys.add(effective_env(docs, container, service)["SHIPYARD_INTERNAL_KEY"])
    assert len(keys) == 1
    with pytest.raises(ValueError, match="32 random bytes"):
        parse_key(keys.pop())


# --- against the real kustomize, where there is one ------------------------------------------------


def test_rendering_matches_kubectl_kustomize(variant: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the overlays were checked by tests/deploy/kustomize.py "
                    "only, not by kustomize itself")
    import yaml

    done = subprocess.run([kubectl, "kustomize", str(VARIANTS[variant])], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    theirs = [d for d in yaml.safe_load_all(done.stdout) if d is not None]

    def key(doc: Doc) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    assert canonical(sorted(render(VARIANTS[variant]), key=key)) == canonical(sorted(theirs, key=key))
