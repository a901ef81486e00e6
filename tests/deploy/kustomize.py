"""A small, pure-Python reading of the kustomize trees under deploy/kustomize.

It renders a kustomization the way ``kubectl kustomize`` does for the features these trees use
(``resources``, ``patches`` given by ``path`` as strategic-merge patches, ``images``,
``namespace``) and refuses any other feature, so the manifest tests can check overlays without kubectl. Where
kubectl is installed, a test compares this rendering with kubectl's.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kustomize"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"

Doc = dict[str, Any]

# The kinds these manifests may use, with the apiVersion each must name.
KNOWN_KINDS = {
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "PersistentVolumeClaim": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "NetworkPolicy": "networking.k8s.io/v1",
}
CLUSTER_SCOPED = {"Namespace"}
SUPPORTED_FIELDS = {"apiVersion", "kind", "namespace", "resources", "patches", "images"}

# Strategic-merge keys of the lists these patches touch (from the Kubernetes API types);
# other lists are replaced whole, as strategic merge does for lists without a merge key.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}


class Unsupported(Exception):
    """The kustomization uses a feature this reader does not implement."""


def load_docs(path: Path) -> list[Doc]:
    """The YAML documents of a file, empty ones left out."""
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def kustomization_dirs() -> list[Path]:
    """Every directory under deploy/kustomize holding a kustomization.yaml."""
    return sorted(p.parent for p in KUSTOMIZE.rglob("kustomization.yaml"))


def kustomization(directory: Path) -> Doc:
    """The kustomization.yaml of a directory."""
    (doc,) = load_docs(directory / "kustomization.yaml")
    return doc


def _merge_list(base: list[Any], patch: list[Any], key: str | None) -> list[Any]:
    if key is None or not all(isinstance(i, dict) and key in i for i in [*base, *patch]):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(base)
    for item in patch:
        found = next((m for m in merged if m[key] == item[key]), None)
        if found is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[merged.index(found)] = merge(found, item)
    return merged


def merge(base: Any, patch: Any, field: str = "") -> Any:
    """Strategic merge of ``patch`` into a copy of ``base`` (null deletes a field)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for name, value in patch.items():
            if name.startswith("$"):
                raise Unsupported(f"strategic-merge directive {name!r}")
            if value is None:
                out.pop(name, None)
            elif name in out:
                out[name] = merge(out[name], value, name)
            else:
                out[name] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list):
        key = MERGE_KEYS.get(field)
        if field == "ports":
            key = "containerPort" if all("containerPort" in p for p in patch) else "port"
        return _merge_list(base, patch, key)
    return copy.deepcopy(patch)


@cache
def _render(directory: Path) -> tuple[str, ...]:
    spec = kustomization(directory)
    unknown = set(spec) - SUPPORTED_FIELDS
    if unknown:
        raise Unsupported(f"{directory}: kustomization fields {sorted(unknown)}")
    docs: list[Doc] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        docs.extend(render(path) if path.is_dir() else load_docs(path))
    for patch in spec.get("patches", []):
        if set(patch) != {"path"}:
            raise Unsupported(f"{directory}: patch {patch} (only `path:` patches are read)")
        for change in load_docs(directory / patch["path"]):
            target = find(docs, change["kind"], change["metadata"]["name"])
            if target is None:
                raise LookupError(f"{directory / patch['path']}: no {change['kind']} "
                                  f"{change['metadata']['name']} to patch")
            docs[docs.index(target)] = merge(target, change)
    for image in spec.get("images", []):
        for doc in docs:
            _set_image(doc, image)
    if "namespace" in spec:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc.setdefault("metadata", {})["namespace"] = spec["namespace"]
    return tuple(json.dumps(doc) for doc in docs)


def _set_image(doc: Doc, image: Doc) -> None:
    """kustomize's ``images:`` entry (name, newName, newTag, digest) applied to a workload."""
    if doc["kind"] not in ("Deployment", "StatefulSet"):
        return
    spec = doc["spec"]["template"]["spec"]
    for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
        reference, _, digest = container["image"].partition("@")
        name, tag = reference, ""
        if ":" in reference.rsplit("/", 1)[-1]:
            name, _, tag = reference.rpartition(":")
        if name != image["name"]:
            continue
        name = image.get("newName", name)
        tag = image.get("newTag", tag)
        digest = image.get("digest", digest)
        container["image"] = f"{name}@{digest}" if digest else f"{name}:{tag}" if tag else name


def render(directory: Path) -> list[Doc]:
    """The resources a kustomization directory stands for (fresh copies)."""
    return [json.loads(doc) for doc in _render(directory.resolve())]


def find(docs: list[Doc], kind: str, name: str) -> Doc | None:
    """The resource of that kind and name, or None."""
    return next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name), None)


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    """Every resource of a kind."""
    return [d for d in docs if d["kind"] == kind]


def canonical(value: Any) -> Any:
    """A form that compares equal whatever the order of the resources and of list items that
    are objects (kustomize reorders merged lists); lists of scalars keep their order."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        if all(isinstance(i, dict) for i in items):
            items.sort(key=lambda i: json.dumps(i, sort_keys=True))
        return items
    return value


def secret_data(secret: Doc) -> dict[str, str]:
    """A Secret's values, decoded."""
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    values.update(secret.get("stringData") or {})
    return values


def pod_spec(workload: Doc) -> Doc:
    """The pod template's spec of a Deployment or StatefulSet."""
    return workload["spec"]["template"]["spec"]


def resolve_port(container: Doc, port: int | str) -> int | None:
    """The containerPort a probe or a Service's targetPort means, or None when not declared."""
    for declared in container.get("ports", []):
        if port in (declared["containerPort"], declared.get("name")):
            return int(declared["containerPort"])
    return None


def workloads_selected(docs: list[Doc], selector: dict[str, str]) -> list[Doc]:
    """The Deployments and StatefulSets whose pods carry every label of ``selector``."""
    return [w for w in [*of_kind(docs, "Deployment"), *of_kind(docs, "StatefulSet")]
            if selector and selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()]


def dockerfile() -> tuple[list[str], list[str], list[str]]:
    """The image's ENTRYPOINT, its CMD, and the base images of its stages (ARGs resolved)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    args: dict[str, str] = {}
    entrypoint: list[str] = []
    cmd: list[str] = []
    bases: list[str] = []
    for line in text.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "ARG" and "=" in rest and not bases:
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        elif instruction == "FROM":
            image = rest.split()[0]
            bases.append(re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image))
        elif instruction == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif instruction == "CMD":
            cmd = json.loads(rest)
    return entrypoint, cmd, bases


def container_argv(container: Doc) -> list[str]:
    """What the container runs, by Kubernetes' rules for command/args over ENTRYPOINT/CMD."""
    entrypoint, cmd, _ = dockerfile()
    if "command" in container:
        return [*container["command"], *container.get("args", [])]
    return [*entrypoint, *container.get("args", cmd)]
