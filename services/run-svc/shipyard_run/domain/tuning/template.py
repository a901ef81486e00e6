"""A Katib trial template read for what a Shipyard trial runs: its primary container's command.

The container is found by name in any pod template of the trial spec (a batch/v1 Job, a TFJob's
replicas, …), or as a Kubeflow Trainer TrainJob's ``trainer`` (Katib's ``node`` container).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from shipyard.kit.errors import InvalidArgument

from .models import TrialTemplateModel
from .spec import TRIAL_NAME_REFERENCE, TRIAL_PARAMETER, TrialParameter, TrialTemplate

# Katib's SDK's default (its webhook requires the name; a Shipyard file may leave it out).
DEFAULT_PRIMARY_CONTAINER = "training-container"
JOB_SUCCESS = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
JOB_FAILURE = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
KUBEFLOW_SUCCESS = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
KUBEFLOW_JOBS = {"TFJob", "PyTorchJob", "XGBoostJob", "MPIJob"}
_SHELLS = {"sh", "bash", "dash", "zsh", "ash"}
_TRIAL_META = "${trialSpec."


def read_trial_template(
    model: TrialTemplateModel, parameter_names: Sequence[str], path: str,
) -> TrialTemplate:
    """The trial template at ``path``, checked against the study's parameters."""
    if model.config_map is not None:
        raise InvalidArgument(f"{path}.configMap", "trial templates from a ConfigMap are not supported "
                              "(there are no cluster ConfigMaps here): put the template in trialSpec")
    spec = model.trial_spec
    if spec is None:
        raise InvalidArgument(f"{path}.trialSpec", "is required: the resource whose container runs a trial")
    _check_resource(spec, f"{path}.trialSpec")
    primary = model.primary_container_name or DEFAULT_PRIMARY_CONTAINER
    container_path, container = _primary_container(spec, primary, path)
    words = _words(container, f"{path}.trialSpec{container_path}")
    parameters = _trial_parameters(model, parameter_names, f"{path}.trialParameters")
    _check_references(spec, parameters, words, path)
    success, failure = _conditions(model, str(spec.get("kind", "")))
    is_script = len(words) == 3 and posixpath.basename(words[0]) in _SHELLS and words[1] == "-c"
    return TrialTemplate(
        primary_container_name=primary, words=tuple(words), script=words[2] if is_script else None,
        trial_parameters=parameters, trial_spec=spec, success_condition=success, failure_condition=failure,
        primary_pod_labels=tuple(sorted(model.primary_pod_labels.items())), retain=model.retain,
    )


def _check_resource(spec: Mapping[str, Any], path: str) -> None:
    if not spec.get("apiVersion") or not spec.get("kind"):
        raise InvalidArgument(path, "needs apiVersion and kind (e.g. batch/v1 Job)")
    metadata = spec.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgument(f"{path}.metadata", "must be a mapping")
    for key in ("name", "namespace"):
        if metadata.get(key):
            raise InvalidArgument(f"{path}.metadata.{key}",
                                  "must be left out: each trial is named by the study")


def _primary_container(spec: Mapping[str, Any], name: str, path: str) -> tuple[str, Mapping[str, Any]]:
    for where, container in _containers(spec, ""):
        if container.get("name") == name:
            return where, container
    trainer = (spec.get("spec") or {}).get("trainer") if spec.get("kind") == "TrainJob" else None
    if name == "node" and isinstance(trainer, Mapping):
        return ".spec.trainer", trainer
    raise InvalidArgument(f"{path}.primaryContainerName",
                          f"no container named {name!r} in the trialSpec's pod templates")


def _containers(node: Any, where: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "containers" and isinstance(value, list):
                for index, item in enumerate(value):
                    if isinstance(item, Mapping):
                        yield f"{where}.containers[{index}]", item
            else:
                yield from _containers(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _containers(item, f"{where}[{index}]")


def _words(container: Mapping[str, Any], path: str) -> list[str]:
    words: list[str] = []
    for key in ("command", "args"):
        value = container.get(key) or []
        if not isinstance(value, list) or not all(isinstance(word, str) for word in value):
            raise InvalidArgument(f"{path}.{key}", "must be a list of strings")
        words.extend(value)
    if not container.get("command"):
        raise InvalidArgument(f"{path}.command", "is required: a trial runs the primary container's command "
                              "(the container's image and its entrypoint are not used)")
    return words


def _trial_parameters(
    model: TrialTemplateModel, parameter_names: Sequence[str], path: str,
) -> tuple[TrialParameter, ...]:
    names: set[str] = set()
    references: set[str] = set()
    parameters: list[TrialParameter] = []
    for index, item in enumerate(model.trial_parameters or []):
        at = f"{path}[{index}]"
        if not item.name or not item.reference or "{" in item.name or "}" in item.name:
            raise InvalidArgument(at, "needs a name and a reference, and the name must not contain { or }")
        if item.name in names:
            raise InvalidArgument(f"{at}.name", f"{item.name!r} is declared twice")
        if item.reference in references:
            raise InvalidArgument(f"{at}.reference", f"{item.reference!r} is referenced twice")
        _check_reference(item.reference, parameter_names, f"{at}.reference")
        names.add(item.name)
        references.add(item.reference)
        parameters.append(TrialParameter(item.name, item.reference, item.description))
    return tuple(parameters)


def _check_reference(reference: str, parameter_names: Sequence[str], path: str) -> None:
    if reference.startswith(_TRIAL_META):
        if reference != TRIAL_NAME_REFERENCE:
            raise InvalidArgument(path, f"{reference} is not supported: a trial is a run, not a Kubernetes "
                                  f"resource; only {TRIAL_NAME_REFERENCE} (the trial's name) is")
        return
    if reference not in parameter_names:
        raise InvalidArgument(path, f"{reference!r} is not a parameter of this study "
                              f"(parameters: {', '.join(parameter_names)})")


def _check_references(
    spec: Mapping[str, Any], parameters: tuple[TrialParameter, ...], words: list[str], path: str,
) -> None:
    declared = {parameter.name for parameter in parameters}
    for where, text in _strings(spec, f"{path}.trialSpec"):
        for found in TRIAL_PARAMETER.finditer(text):
            if found.group(1) not in declared:
                raise InvalidArgument(where,
                                      f"{found.group(0)} is not declared in trialTemplate.trialParameters")
    command = " ".join(words)
    for index, parameter in enumerate(parameters):
        if f"${{trialParameters.{parameter.name}}}" not in command:
            raise InvalidArgument(f"{path}.trialParameters[{index}].name",
                                  f"${{trialParameters.{parameter.name}}} is not used in the primary "
                                  "container's command (a trial is given only that command)")


def _strings(node: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from _strings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _strings(item, f"{where}[{index}]")


def _conditions(model: TrialTemplateModel, kind: str) -> tuple[str, str]:
    """Katib's default success and failure conditions for the resource's kind (kept to show back: a
    trial's outcome is its run's)."""
    if kind == "Job":
        return model.success_condition or JOB_SUCCESS, model.failure_condition or JOB_FAILURE
    if kind in KUBEFLOW_JOBS:
        return model.success_condition or KUBEFLOW_SUCCESS, model.failure_condition or JOB_FAILURE
    if kind == "TrainJob":
        return model.success_condition or JOB_SUCCESS, model.failure_condition or JOB_FAILURE
    return model.success_condition, model.failure_condition
