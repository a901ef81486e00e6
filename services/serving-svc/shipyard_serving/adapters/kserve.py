"""The KServe ``InferenceService`` that a test inference or a deployment becomes on a cluster.

:func:`inference_service` turns the same record that serving-svc runs locally (the name, the pinned
:class:`ModelPin` and its :class:`ServingSpec`) into a ``serving.kserve.io/v1beta1`` InferenceService,
as a plain dict ready for :func:`to_yaml` or a Kubernetes client. It does no I/O.

The predictor:

* ``sklearn``, ``onnx``, ``torchscript``: KServe's ``model`` spec, ``modelFormat`` ``sklearn``,
  ``onnx`` or ``pytorch`` over the V2 protocol, with no ``runtime`` so that KServe picks one of its
  ServingRuntimes for the format and protocol. The model version's files must be laid out the way that
  runtime reads them (for ``pytorch`` that may be TorchServe's ``.mar`` archive or Triton's model
  repository). ``spec.serving_image``, when given, overrides the runtime's image (KServe merges the
  ``model`` container over the runtime's).
* ``auto`` and ``custom``: KServe cannot pick a format from nothing, so the predictor is a custom
  container running Shipyard's built-in model server, the same process serving-svc starts locally::

      python -m shipyard_model_server --model-dir /mnt/models --model-name MODEL
          [--model-version N] --host 0.0.0.0 --port 8080 --framework auto|custom
          [--predictor module:Class] [--max-concurrency N]

  in ``spec.serving_image`` or else the ``default_image`` (which must have Shipyard installed with
  its ``model-server`` extra, and ``python`` on its PATH). ``STORAGE_URI`` in its environment makes
  KServe's storage initializer download the model version to ``/mnt/models`` first; Kubernetes asks
  ``/v2/health/ready`` before sending it requests. It answers V2 requests at ``/v2/models/MODEL/...``,
  as locally, while KServe's own runtimes (the ``model`` spec) answer at ``/v2/models/NAME/...``,
  NAME being the InferenceService's.

The transformer, when ``spec.transformer.code`` is set, is a KServe custom transformer: one container
in ``transformer.image`` or else the ``default_image``, run with its image's own entrypoint. Shipyard's
built-in server runs a transformer in process (``--transformer-dir``), not as a process of its own, so
that entrypoint is expected to be a transformer server that:

* takes the transformer from its environment: ``SHIPYARD_TRANSFORMER_CODE`` (the code repo),
  ``SHIPYARD_TRANSFORMER_COMMIT`` (the pinned commit, when known), ``SHIPYARD_TRANSFORMER_SCRIPT`` (the
  script in the repo defining ``preprocess(request)`` and/or ``postprocess(response)``),
  ``SHIPYARD_TRANSFORMER_DIGEST`` (the code snapshot's manifest, when pinned), and the model's name
  the predictor answers V2 requests at in ``SHIPYARD_MODEL_NAME`` (:func:`served_model`);
* serves the V2 protocol over HTTP on port 8080 (``/v2/health/ready`` once its script is loaded) and
  sends each preprocessed request on to the predictor, whose host KServe passes in the
  ``--predictor_host`` argument it adds to a custom transformer's container.

Autoscaling: ``minReplicas`` and ``maxReplicas`` for both components; with ``max_concurrency`` set,
``containerConcurrency`` caps the requests in flight per replica and scaling follows concurrency with
that as its target (``scaleMetric: concurrency``, ``scaleTarget``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from shipyard_serving.domain.serving import ModelPin, ServingSpec

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
CONTAINER_NAME = "kserve-container"  # the name KServe's storage initializer looks for
MODEL_DIR = "/mnt/models"  # where KServe's storage initializer puts STORAGE_URI's files
PORT = 8080
GPU_RESOURCE = "nvidia.com/gpu"
MODEL_SERVER_COMMAND = ("python", "-m", "shipyard_model_server")
MODEL_FORMATS = {"sklearn": "sklearn", "onnx": "onnx", "torchscript": "pytorch"}
MANAGED_BY = "shipyard"
LABEL_MODEL = "shipyard.io/model"
LABEL_MODEL_VERSION = "shipyard.io/model-version"
ANNOTATION_MODEL_DIGEST = "shipyard.io/model-digest"
ANNOTATION_TRANSFORMER_DIGEST = "shipyard.io/transformer-digest"
# KServe names each component's Knative Service (or Deployment) <name>-<component>: a DNS label too.
COMPONENT_SUFFIXES = {"predictor": "-predictor", "transformer": "-transformer"}
DNS_LABEL_MAX = 63

_ISVC_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")  # KServe's own rule: DNS-1123, starting with a letter
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")


def inference_service(
    name: str,
    namespace: str,
    model: ModelPin,
    spec: ServingSpec,
    storage_uri: str,
    *,
    default_image: str,
    labels: Mapping[str, str] | None = None,
    service_account: str = "",
) -> dict[str, Any]:
    """The ``serving.kserve.io/v1beta1`` InferenceService serving ``model`` as ``spec`` says.

    ``storage_uri`` is where KServe fetches the model version's files from (``s3://…``, ``pvc://…``);
    ``default_image`` is the image with Shipyard in it, for the built-in model server and for a
    transformer without an image of its own; ``labels`` are added to Shipyard's own (which win);
    ``service_account``, when given, is the ServiceAccount both components run as (KServe's storage
    initializer reads ``storage_uri`` with the S3 credentials attached to it).
    ValueError names the first argument that cannot make a valid InferenceService; the spec's own
    rules raise as :meth:`ServingSpec.checked` does.
    """
    spec = spec.checked()
    has_transformer = bool(spec.transformer.code)
    _check_name(name, has_transformer)
    if not _DNS_LABEL.fullmatch(namespace) or len(namespace) > DNS_LABEL_MAX:
        raise ValueError(f"namespace {namespace!r} is not a Kubernetes namespace name (a DNS-1123 label)")
    if not model.model:
        raise ValueError("model.model is required: the model repo to serve")
    if not storage_uri:
        raise ValueError("storage_uri is required: where KServe fetches the model version's files")
    if not default_image:
        raise ValueError("default_image is required: the image with Shipyard's model server")

    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": _labels(model, labels or {}),
    }
    annotations = {}
    if model.manifest_digest:
        annotations[ANNOTATION_MODEL_DIGEST] = model.manifest_digest
    if spec.transformer.manifest_digest:
        annotations[ANNOTATION_TRANSFORMER_DIGEST] = spec.transformer.manifest_digest
    if annotations:
        metadata["annotations"] = annotations

    if service_account and (not _DNS_SUBDOMAIN.fullmatch(service_account) or len(service_account) > 253):
        raise ValueError(f"service account {service_account!r} is not a Kubernetes ServiceAccount name")
    body: dict[str, Any] = {"predictor": _predictor(model, spec, storage_uri, default_image)}
    if has_transformer:
        body["transformer"] = _transformer(served_model(name, model, spec), spec, default_image)
    if service_account:
        for component in body.values():
            component["serviceAccountName"] = service_account
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": body}


def served_model(name: str, model: ModelPin, spec: ServingSpec) -> str:
    """The model name the InferenceService ``name`` answers V2 requests at (``/v2/models/<it>/…``):
    KServe's own runtimes name the model after the InferenceService, the built-in server after the
    model repo."""
    return name if (spec.framework or "auto") in MODEL_FORMATS else model.model


def to_yaml(doc: Mapping[str, Any]) -> str:
    """``doc`` as YAML, keys in the order given (apiVersion, kind, metadata, spec)."""
    return yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False, allow_unicode=True)


# --- the parts ---------------------------------------------------------------------------------


def _check_name(name: str, has_transformer: bool) -> None:
    if not _ISVC_NAME.fullmatch(name):
        raise ValueError(
            f"name {name!r} cannot name a KServe InferenceService: it must be lower-case letters, digits "
            "and '-', start with a letter and end with a letter or digit"
        )
    components = ("predictor", "transformer") if has_transformer else ("predictor",)
    longest = max(len(COMPONENT_SUFFIXES[component]) for component in components)
    if len(name) + longest > DNS_LABEL_MAX:
        raise ValueError(
            f"name {name!r} is too long for a KServe InferenceService: at most "
            f"{DNS_LABEL_MAX - longest} characters, so that {name}{COMPONENT_SUFFIXES[components[-1]]} "
            f"is a DNS label (got {len(name)})"
        )


def _labels(model: ModelPin, extra: Mapping[str, str]) -> dict[str, str]:
    labels = dict(extra)
    labels["app.kubernetes.io/managed-by"] = MANAGED_BY
    labels[LABEL_MODEL] = model.model
    if model.version:
        labels[LABEL_MODEL_VERSION] = str(model.version)
    for key, value in labels.items():
        _check_label(key, value)
    return labels


def _check_label(key: str, value: str) -> None:
    prefix, _, label = key.rpartition("/")
    if (
        not _LABEL_VALUE.fullmatch(label)
        or not label
        or len(label) > DNS_LABEL_MAX
        or (prefix and (not _DNS_SUBDOMAIN.fullmatch(prefix) or len(prefix) > 253))
    ):
        raise ValueError(f"label key {key!r} is not a Kubernetes label name")
    if not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value) or len(value) > DNS_LABEL_MAX:
        raise ValueError(
            f"label {key}={value!r}: a Kubernetes label value is at most 63 letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit"
        )


def _scaling(spec: ServingSpec) -> dict[str, Any]:
    scaling: dict[str, Any] = {"minReplicas": spec.min_replicas, "maxReplicas": spec.max_replicas}
    if spec.max_concurrency:
        scaling["containerConcurrency"] = spec.max_concurrency
        scaling["scaleMetric"] = "concurrency"
        scaling["scaleTarget"] = spec.max_concurrency
    return scaling


def _resources(spec: ServingSpec) -> dict[str, Any]:
    amounts: dict[str, str] = {}
    if spec.cpu:
        amounts["cpu"] = spec.cpu
    if spec.memory:
        amounts["memory"] = spec.memory
    if spec.gpus:
        amounts[GPU_RESOURCE] = str(spec.gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def _predictor(model: ModelPin, spec: ServingSpec, storage_uri: str, default_image: str) -> dict[str, Any]:
    predictor = _scaling(spec)
    resources = _resources(spec)
    model_format = MODEL_FORMATS.get(spec.framework)
    if model_format is not None:
        served: dict[str, Any] = {
            "modelFormat": {"name": model_format},
            "protocolVersion": "v2",
            "storageUri": storage_uri,
        }
        if spec.serving_image:
            served["image"] = spec.serving_image
        if resources:
            served["resources"] = resources
        predictor["model"] = served
        return predictor

    args = ["--model-dir", MODEL_DIR, "--model-name", model.model]
    if model.version:
        args += ["--model-version", str(model.version)]
    args += ["--host", "0.0.0.0", "--port", str(PORT), "--framework", spec.framework]
    if spec.predictor:
        args += ["--predictor", spec.predictor]
    if spec.max_concurrency:
        args += ["--max-concurrency", str(spec.max_concurrency)]
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": spec.serving_image or default_image,
        "command": list(MODEL_SERVER_COMMAND),
        "args": args,
        "env": [{"name": "STORAGE_URI", "value": storage_uri}],
        **_http(),
    }
    if resources:
        container["resources"] = resources
    predictor["containers"] = [container]
    return predictor


def _transformer(predictor_model: str, spec: ServingSpec, default_image: str) -> dict[str, Any]:
    code = spec.transformer
    env = [
        {"name": "SHIPYARD_TRANSFORMER_CODE", "value": code.code},
        {"name": "SHIPYARD_TRANSFORMER_SCRIPT", "value": code.script},
    ]
    if code.commit:
        env.append({"name": "SHIPYARD_TRANSFORMER_COMMIT", "value": code.commit})
    if code.manifest_digest:
        env.append({"name": "SHIPYARD_TRANSFORMER_DIGEST", "value": code.manifest_digest})
    env.append({"name": "SHIPYARD_MODEL_NAME", "value": predictor_model})
    container = {"name": CONTAINER_NAME, "image": code.image or default_image, "env": env, **_http()}
    return {**_scaling(spec), "containers": [container]}


def _http() -> dict[str, Any]:
    """The port and probes of a container that speaks V2 over HTTP on :data:`PORT`."""
    return {
        "ports": [{"name": "http1", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": PORT}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": PORT}, "periodSeconds": 10},
    }
