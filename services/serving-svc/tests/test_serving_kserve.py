"""The KServe InferenceService a test inference or a deployment becomes on a cluster.

Every document is checked against schemas no one here wrote:

* its Kubernetes parts (containers, resources, probes, env, metadata) with the official ``kubernetes``
  client's models, which refuse wrong types; they drop unknown keys, so each part is compared after a
  round trip through them;
* the whole InferenceService with KServe's own generated models (``kserve.models`` of the KServe SDK,
  which tools/install-test-deps.sh installs without its dependencies into ``.venv/kserve-sdk``). Those
  models neither check types nor refuse unknown keys, so :func:`kserve_object` walks the document along
  their declared ``openapi_types`` (strict on primitive types, refusing keys they do not declare, handing
  Kubernetes types to the Kubernetes models) and the result must serialize back to the same document.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from pydantic import BaseModel
from shipyard_serving.adapters.kserve import inference_service, to_yaml
from shipyard_serving.domain.serving import ModelPin, ServingSpec, Transformer

from shipyard.kit.errors import InvalidArgument

IMAGE = "registry.example/shipyard:0.1.0"
URI = "s3://shipyard-models/mnist/3"
MNIST = ModelPin("mnist", 3, "m-1", "sha256:mnist-3")
KSERVE_SDK = Path(sys.prefix) / "kserve-sdk"

# --- validation against the Kubernetes and KServe models ------------------------------------------


@pytest.fixture(scope="module")
def kserve_models() -> Iterator[types.ModuleType]:
    """``kserve.models`` without ``kserve/__init__`` (which starts the SDK's model server runtime).

    The package is stood in for by a bare module whose path is the SDK's folder, so that only
    ``kserve.configuration`` and ``kserve.models`` are imported; it is taken out again afterwards.
    """
    before = {name for name in sys.modules if name == "kserve" or name.startswith("kserve.")}
    if before:
        yield importlib.import_module("kserve.models")
        return
    folder = KSERVE_SDK / "kserve"
    if not folder.is_dir():
        found = importlib.util.find_spec("kserve")
        if found is None or not found.submodule_search_locations:
            pytest.fail(
                f"KServe's SDK is missing ({folder}): these tests validate against its models, which "
                "`make test` installs via tools/install-test-deps.sh (or run "
                "`bash tools/install-test-deps.sh` yourself)",
                pytrace=False,
            )
        folder = Path(next(iter(found.submodule_search_locations)))
    package = types.ModuleType("kserve")
    package.__path__ = [str(folder)]
    sys.modules["kserve"] = package
    try:
        yield importlib.import_module("kserve.models")
    finally:
        for name in [name for name in sys.modules if name == "kserve" or name.startswith("kserve.")]:
            del sys.modules[name]


_LIST = re.compile(r"list\[(.*)\]")
_DICT = re.compile(r"dict\(str, (.*)\)")
_PRIMITIVES: dict[str, type] = {"str": str, "int": int, "bool": bool, "float": float}


def kserve_object(models: types.ModuleType, data: Any, kind: str, path: str = "$") -> Any:
    """``data`` as the KServe (or Kubernetes) model ``kind``; AssertionError naming what does not fit."""
    if match := _LIST.fullmatch(kind):
        assert isinstance(data, list), f"{path}: {kind} wants a list, got {data!r}"
        return [kserve_object(models, item, match[1], f"{path}[{i}]") for i, item in enumerate(data)]
    if match := _DICT.fullmatch(kind):
        assert isinstance(data, dict), f"{path}: {kind} wants a mapping, got {data!r}"
        return {key: kserve_object(models, value, match[1], f"{path}.{key}") for key, value in data.items()}
    if kind in _PRIMITIVES:
        wanted = _PRIMITIVES[kind]
        fits = isinstance(data, wanted) and (wanted is bool or not isinstance(data, bool))
        assert fits, f"{path}: wants {kind}, got {data!r}"
        return data
    if kind == "object":
        return data
    model = getattr(models, kind, None)
    if model is not None:
        assert isinstance(data, dict), f"{path}: {kind} wants a mapping, got {data!r}"
        attribute = {key: name for name, key in model.attribute_map.items()}
        unknown = sorted(set(data) - set(attribute))
        assert not unknown, f"{path}: {kind} has no field {', '.join(unknown)}"
        fields = {
            attribute[key]: kserve_object(models, value, model.openapi_types[attribute[key]], f"{path}.{key}")
            for key, value in data.items()
        }
        return model(**fields)
    core = getattr(k8s, kind, None)
    assert core is not None, f"{path}: neither KServe nor Kubernetes has a model {kind}"
    return core.from_dict(data)  # pydantic: refuses wrong types


def as_document(value: Any) -> Any:
    """A KServe or Kubernetes model back as the JSON document it stands for."""
    if isinstance(value, list):
        return [as_document(item) for item in value]
    if isinstance(value, dict):
        return {key: as_document(item) for key, item in value.items()}
    if isinstance(value, BaseModel):
        return k8s.ApiClient().sanitize_for_serialization(value)
    if hasattr(value, "openapi_types") and hasattr(value, "attribute_map"):
        defaults = _generated_defaults(type(value))
        return {
            value.attribute_map[name]: as_document(getattr(value, name))
            for name in value.openapi_types
            if getattr(value, name) is not None and getattr(value, name) != defaults.get(name)
        }
    return value


def _generated_defaults(model: type) -> dict[str, Any]:
    """The defaults other than None that a KServe model's constructor fills in (``name=''`` of the
    container a ``model`` spec embeds): not part of any document, so left out of the round trip."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(model).parameters.items()
        if parameter.default not in (None, inspect.Parameter.empty)
    }


def validated(models: types.ModuleType, doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` after passing KServe's InferenceService model and every Kubernetes part on its own."""
    service = kserve_object(models, doc, "V1beta1InferenceService")
    assert isinstance(service, models.V1beta1InferenceService)
    assert as_document(service) == doc
    assert_core_parts(doc)
    return doc


def core_round_trip(data: dict[str, Any], kind: str) -> None:
    """``data`` through the Kubernetes client's own deserializer and back, unchanged."""
    api = k8s.ApiClient()
    obj = api._ApiClient__deserialize(data, kind)  # type: ignore[attr-defined]
    assert isinstance(obj, getattr(k8s, kind))
    assert api.sanitize_for_serialization(obj) == data, f"{kind} lost or changed fields"


def assert_core_parts(doc: dict[str, Any]) -> None:
    core_round_trip(doc["metadata"], "V1ObjectMeta")
    for component in ("predictor", "transformer"):
        part = doc["spec"].get(component)
        if part is None:
            continue
        for container in part.get("containers", []):
            core_round_trip(container, "V1Container")
            for key, kind in (("resources", "V1ResourceRequirements"), ("readinessProbe", "V1Probe"),
                              ("livenessProbe", "V1Probe")):
                if key in container:
                    core_round_trip(container[key], kind)
            for variable in container.get("env", []):
                core_round_trip(variable, "V1EnvVar")
        if "model" in part and "resources" in part["model"]:
            core_round_trip(part["model"]["resources"], "V1ResourceRequirements")


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {variable["name"]: variable["value"] for variable in container["env"]}


# --- the validators themselves catch what they should -------------------------------------------


def test_the_validation_refuses_unknown_keys_and_wrong_types(kserve_models: types.ModuleType) -> None:
    good = inference_service("mnist", "shipyard", MNIST, ServingSpec(), URI, default_image=IMAGE)
    validated(kserve_models, good)

    typo = yaml.safe_load(to_yaml(good))
    typo["spec"]["predictor"]["minReplica"] = 2
    with pytest.raises(AssertionError, match="no field minReplica"):
        validated(kserve_models, typo)

    wrong = yaml.safe_load(to_yaml(good))
    wrong["spec"]["predictor"]["maxReplicas"] = "3"
    with pytest.raises(AssertionError, match="wants int"):
        validated(kserve_models, wrong)

    port = yaml.safe_load(to_yaml(good))
    port["spec"]["predictor"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    with pytest.raises(ValueError, match="containerPort"):  # pydantic's ValidationError
        validated(kserve_models, port)

    stray = yaml.safe_load(to_yaml(good))
    stray["spec"]["predictor"]["containers"][0]["readinessProbe"]["httpGets"] = {"path": "/"}
    with pytest.raises(AssertionError):  # the Kubernetes model drops it: the round trip differs
        validated(kserve_models, stray)


# --- the document -------------------------------------------------------------------------------


def test_sklearn_uses_kserves_model_spec(kserve_models: types.ModuleType) -> None:
    doc = validated(
        kserve_models,
        inference_service("mnist-prod", "serving", MNIST, ServingSpec(framework="sklearn"), URI,
                          default_image=IMAGE),
    )
    assert (doc["apiVersion"], doc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert doc["metadata"] == {
        "name": "mnist-prod",
        "namespace": "serving",
        "labels": {
            "app.kubernetes.io/managed-by": "shipyard",
            "shipyard.io/model": "mnist",
            "shipyard.io/model-version": "3",
        },
        "annotations": {"shipyard.io/model-digest": "sha256:mnist-3"},
    }
    assert doc["spec"] == {
        "predictor": {
            "minReplicas": 1,
            "maxReplicas": 1,
            "model": {"modelFormat": {"name": "sklearn"}, "protocolVersion": "v2", "storageUri": URI},
        }
    }


@pytest.mark.parametrize(("framework", "model_format"), [("onnx", "onnx"), ("torchscript", "pytorch")])
def test_onnx_and_torchscript_name_kserves_model_formats(
    kserve_models: types.ModuleType, framework: str, model_format: str
) -> None:
    spec = ServingSpec(framework=framework, serving_image="registry.example/triton:24.05")
    doc = validated(kserve_models, inference_service("m", "ns", MNIST, spec, URI, default_image=IMAGE))
    model = doc["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": model_format}
    assert "runtime" not in model  # KServe picks the runtime for the format and protocol
    assert model["image"] == "registry.example/triton:24.05"  # over the runtime's image


def test_custom_runs_the_built_in_model_server_with_the_predictor_class(
    kserve_models: types.ModuleType,
) -> None:
    spec = ServingSpec(framework="custom", predictor="model:Predictor", serving_image="me/server:1")
    doc = validated(kserve_models, inference_service("c", "ns", MNIST, spec, URI, default_image=IMAGE))
    predictor = doc["spec"]["predictor"]
    assert "model" not in predictor
    [container] = predictor["containers"]
    assert container["name"] == "kserve-container"
    assert container["image"] == "me/server:1"
    assert container["command"] == ["python", "-m", "shipyard_model_server"]
    assert container["args"] == [
        "--model-dir", "/mnt/models", "--model-name", "mnist", "--model-version", "3",
        "--host", "0.0.0.0", "--port", "8080", "--framework", "custom", "--predictor", "model:Predictor",
    ]
    assert env_of(container) == {"STORAGE_URI": URI}
    assert container["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert "resources" not in container


def test_auto_becomes_the_built_in_server_in_the_default_image(kserve_models: types.ModuleType) -> None:
    for spec in (ServingSpec(), ServingSpec(framework="")):
        doc = validated(kserve_models, inference_service("a", "ns", ModelPin("digits"), spec, URI,
                                                         default_image=IMAGE))
        [container] = doc["spec"]["predictor"]["containers"]
        assert container["image"] == IMAGE
        assert container["args"] == [
            "--model-dir", "/mnt/models", "--model-name", "digits",
            "--host", "0.0.0.0", "--port", "8080", "--framework", "auto",
        ]
        assert "shipyard.io/model-version" not in doc["metadata"]["labels"]  # not pinned
        assert "annotations" not in doc["metadata"]


def test_a_transformer_is_a_kserve_transformer_component(kserve_models: types.ModuleType) -> None:
    code = Transformer("prep", "abc123", "transform.py", "me/transformer:2", "sha256:prep")
    spec = ServingSpec(framework="sklearn", transformer=code, min_replicas=2, max_replicas=4)
    doc = validated(kserve_models, inference_service("t", "ns", MNIST, spec, URI, default_image=IMAGE))
    transformer = doc["spec"]["transformer"]
    assert (transformer["minReplicas"], transformer["maxReplicas"]) == (2, 4)
    [container] = transformer["containers"]
    assert container["image"] == "me/transformer:2"
    assert "command" not in container  # the image's own entrypoint (see the module's docstring)
    assert env_of(container) == {
        "SHIPYARD_TRANSFORMER_CODE": "prep",
        "SHIPYARD_TRANSFORMER_SCRIPT": "transform.py",
        "SHIPYARD_TRANSFORMER_COMMIT": "abc123",
        "SHIPYARD_TRANSFORMER_DIGEST": "sha256:prep",
        "SHIPYARD_MODEL_NAME": "t",  # KServe's sklearn runtime answers at the InferenceService's name
    }
    assert "STORAGE_URI" not in env_of(container)  # KServe refuses a storage URI on a transformer
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert doc["metadata"]["annotations"]["shipyard.io/transformer-digest"] == "sha256:prep"

    unpinned = ServingSpec(transformer=Transformer("prep", script="t.py"))
    doc = validated(kserve_models, inference_service("t", "ns", MNIST, unpinned, URI, default_image=IMAGE))
    [container] = doc["spec"]["transformer"]["containers"]
    assert container["image"] == IMAGE
    assert "SHIPYARD_TRANSFORMER_COMMIT" not in env_of(container)

    doc = inference_service("t", "ns", MNIST, ServingSpec(), URI, default_image=IMAGE)
    assert "transformer" not in doc["spec"]


def test_resources_and_gpus_are_requests_and_limits(kserve_models: types.ModuleType) -> None:
    want = {"cpu": "500m", "memory": "2Gi", "nvidia.com/gpu": "2"}
    spec = ServingSpec(cpu="500m", memory="2Gi", gpus=2)
    doc = validated(kserve_models, inference_service("r", "ns", MNIST, spec, URI, default_image=IMAGE))
    [container] = doc["spec"]["predictor"]["containers"]
    assert container["resources"] == {"requests": want, "limits": want}

    onnx = ServingSpec(framework="onnx", gpus=1)
    doc = validated(kserve_models, inference_service("r", "ns", MNIST, onnx, URI, default_image=IMAGE))
    gpu = {"nvidia.com/gpu": "1"}
    assert doc["spec"]["predictor"]["model"]["resources"] == {"requests": gpu, "limits": gpu}

    cpu_only = ServingSpec(cpu="1")
    doc = validated(kserve_models, inference_service("r", "ns", MNIST, cpu_only, URI, default_image=IMAGE))
    assert doc["spec"]["predictor"]["containers"][0]["resources"] == {
        "requests": {"cpu": "1"},
        "limits": {"cpu": "1"},
    }


def test_replicas_and_concurrency_drive_kserves_autoscaling(kserve_models: types.ModuleType) -> None:
    spec = ServingSpec(min_replicas=2, max_replicas=5, max_concurrency=8)
    doc = validated(kserve_models, inference_service("s", "ns", MNIST, spec, URI, default_image=IMAGE))
    predictor = doc["spec"]["predictor"]
    assert {key: predictor[key] for key in ("minReplicas", "maxReplicas", "containerConcurrency",
                                            "scaleMetric", "scaleTarget")} == {
        "minReplicas": 2, "maxReplicas": 5, "containerConcurrency": 8,
        "scaleMetric": "concurrency", "scaleTarget": 8,
    }
    assert predictor["containers"][0]["args"][-2:] == ["--max-concurrency", "8"]

    fixed = ServingSpec(framework="sklearn", min_replicas=3)  # max 0: the same as min; no concurrency limit
    predictor = validated(
        kserve_models, inference_service("s", "ns", MNIST, fixed, URI, default_image=IMAGE)
    )["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (3, 3)
    assert not {"containerConcurrency", "scaleMetric", "scaleTarget"} & set(predictor)


@pytest.mark.parametrize(
    "name",
    ["", "Mnist", "mnist_test", "mnist.test", "1mnist", "-mnist", "mnist-", "a" * 54],
)
def test_names_kserve_would_refuse_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(name))):
        inference_service(name, "ns", MNIST, ServingSpec(), URI, default_image=IMAGE)


def test_the_longest_names_leave_room_for_the_component_suffix(kserve_models: types.ModuleType) -> None:
    validated(kserve_models, inference_service("a" * 53, "ns", MNIST, ServingSpec(), URI,
                                               default_image=IMAGE))
    with_transformer = ServingSpec(transformer=Transformer("prep", script="t.py"))
    with pytest.raises(ValueError, match="at most 51"):
        inference_service("a" * 52, "ns", MNIST, with_transformer, URI, default_image=IMAGE)


def test_bad_namespaces_labels_and_arguments_are_refused() -> None:
    def make(**overrides: Any) -> dict[str, Any]:
        arguments: dict[str, Any] = {"name": "ok", "namespace": "ns", "model": MNIST, "spec": ServingSpec(),
                                     "storage_uri": URI, "default_image": IMAGE}
        arguments.update(overrides)
        return inference_service(**arguments)

    with pytest.raises(ValueError, match="namespace 'Team_A'"):
        make(namespace="Team_A")
    with pytest.raises(ValueError, match="label key 'bad key'"):
        make(labels={"bad key": "x"})
    with pytest.raises(ValueError, match="label team="):
        make(labels={"team": "not ok!"})
    with pytest.raises(ValueError, match=r"shipyard\.io/model="):
        make(model=ModelPin("mnist_"))  # a Shipyard repo name that is no label value
    with pytest.raises(ValueError, match="storage_uri"):
        make(storage_uri="")
    with pytest.raises(ValueError, match="default_image"):
        make(default_image="")
    with pytest.raises(InvalidArgument):
        make(spec=ServingSpec(framework="tensorflow"))


def test_callers_labels_are_kept_and_shipyards_win(kserve_models: types.ModuleType) -> None:
    labels = {"team": "vision", "example.com/tier": "gold", "app.kubernetes.io/managed-by": "helm"}
    doc = validated(kserve_models, inference_service("l", "ns", MNIST, ServingSpec(), URI,
                                                     default_image=IMAGE, labels=labels))
    assert doc["metadata"]["labels"]["team"] == "vision"
    assert doc["metadata"]["labels"]["example.com/tier"] == "gold"
    assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "shipyard"


def test_a_service_account_runs_both_components(kserve_models: types.ModuleType) -> None:
    """The cluster's ServiceAccount (its S3 credentials read the model files) on predictor and transformer."""
    code = Transformer("prep", "abc123", "transform.py", "me/transformer:2", "sha256:prep")
    doc = validated(kserve_models, inference_service("sa", "ns", MNIST, ServingSpec(transformer=code), URI,
                                                     default_image=IMAGE, service_account="kserve-s3"))
    assert doc["spec"]["predictor"]["serviceAccountName"] == "kserve-s3"
    assert doc["spec"]["transformer"]["serviceAccountName"] == "kserve-s3"
    bare = inference_service("sa", "ns", MNIST, ServingSpec(), URI, default_image=IMAGE)
    assert "serviceAccountName" not in bare["spec"]["predictor"]
    with pytest.raises(ValueError, match="ServiceAccount"):
        inference_service("sa", "ns", MNIST, ServingSpec(), URI, default_image=IMAGE,
                          service_account="Bad SA")


def test_yaml_parses_back_to_the_same_document(kserve_models: types.ModuleType) -> None:
    code = Transformer("prep", "0123456789", "transform.py")
    spec = ServingSpec(framework="custom", predictor="model:Predictor", cpu="1", memory="512Mi", gpus=1,
                       min_replicas=1, max_replicas=3, max_concurrency=16, transformer=code)
    doc = inference_service("everything", "ns", MNIST, spec, URI, default_image=IMAGE)
    text = to_yaml(doc)
    assert text.startswith("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n")
    assert "shipyard.io/model-version: '3'" in text  # a string, as label values must be
    parsed = yaml.safe_load(text)
    assert parsed == doc
    validated(kserve_models, parsed)
