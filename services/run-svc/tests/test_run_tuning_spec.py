"""Tuning files (Katib v1beta1): accepted shapes, refusals naming the field, defaults, trial commands,
objective strategies and metric lines."""

from __future__ import annotations

import subprocess
import textwrap
from typing import Any

import pytest
import yaml
from shipyard_run.domain.tuning import DEFAULT_METRIC_PATTERN, TuningSpec, parse_tuning

from shipyard.kit.errors import InvalidArgument

LR = {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.05"}}
MOMENTUM = {"name": "momentum", "parameterType": "double", "feasibleSpace": {"min": "0.5", "max": "0.9"}}
EPOCHS = {"name": "epochs", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "4"}}


def _spec(**changes: Any) -> dict[str, Any]:
    """A product-form tuning file (the body of an Experiment's spec) shaped like Katib's random example."""
    body: dict[str, Any] = {
        "objective": {"type": "minimize", "goal": 0.001, "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": "random"},
        "parallelTrialCount": 3, "maxTrialCount": 12, "maxFailedTrialCount": 3,
        "parameters": [LR, MOMENTUM],
    }
    body.update(changes)
    return body


def _job(*command: str, container: str = "training-container") -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {
        "containers": [{"name": "sidecar", "image": "busybox", "command": ["sleep", "1"]},
                       {"name": container, "image": "ignored:latest", "command": list(command)}],
        "restartPolicy": "Never"}}}}


LR_MOMENTUM_TEMPLATE = {
    "primaryContainerName": "training-container",
    "trialParameters": [
        {"name": "learningRate", "description": "Learning rate", "reference": "lr"},
        {"name": "momentum", "description": "Momentum", "reference": "momentum"},
    ],
    "trialSpec": _job("python3", "train.py", "--epochs=1", "--lr=${trialParameters.learningRate}",
                      "--momentum=${trialParameters.momentum}"),
}


def _experiment(**changes: Any) -> dict[str, Any]:
    spec = _spec(trialTemplate=LR_MOMENTUM_TEMPLATE)
    spec.update(changes)
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment",
            "metadata": {"namespace": "kubeflow", "name": "tune"}, "spec": spec}


class _Dumper(yaml.SafeDumper):
    """Writes a repeated value out again, as a person would, rather than as an alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _yaml(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False)


def _parse(document: dict[str, Any]) -> TuningSpec:
    return parse_tuning(_yaml(document))


def _refused(document: dict[str, Any] | str) -> InvalidArgument:
    text = document if isinstance(document, str) else _yaml(document)
    with pytest.raises(InvalidArgument) as refused:
        parse_tuning(text)
    return refused.value


KATIB_FILE_FORMAT = r"{metricName: ([\w|-]+), metricValue: ((-?\d+)(\.\d+)?)}"
# The shapes of Katib's examples, one per algorithm, collector and feature (spec-body changes).
SHAPES: dict[str, dict[str, Any]] = {
    "random": {},
    "grid": {"algorithm": {"algorithmName": "grid"}, "parameters": [
        {"name": "lr", "parameterType": "double",
         "feasibleSpace": {"min": "0.01", "max": "0.05", "step": "0.005"}},
        {"name": "momentum", "parameterType": "double",
         "feasibleSpace": {"min": "0.5", "max": "0.9", "step": "0.1"}},
    ]},
    "tpe": {"algorithm": {"algorithmName": "tpe", "algorithmSettings": [
        {"name": "n_startup_trials", "value": "5"}, {"name": "random_state", "value": "7"}]}},
    "multivariate-tpe": {"algorithm": {"algorithmName": "multivariate-tpe"}},
    "bayesianoptimization": {"algorithm": {"algorithmName": "bayesianoptimization", "algorithmSettings": [
        {"name": "random_state", "value": "10"}, {"name": "base_estimator", "value": "GP"},
        {"name": "acq_func", "value": "EI"}, {"name": "n_initial_points", "value": "4"}]}},
    "cmaes": {"algorithm": {"algorithmName": "cmaes", "algorithmSettings": [
        {"name": "restart_strategy", "value": "ipop"}, {"name": "sigma", "value": "0.3"}]}},
    "sobol": {"algorithm": {"algorithmName": "sobol"}},
    "hyperband": {
        "parallelTrialCount": 2, "maxTrialCount": 2, "maxFailedTrialCount": 2,
        "algorithm": {"algorithmName": "hyperband", "algorithmSettings": [
            {"name": "resource_name", "value": "epochs"}, {"name": "eta", "value": "2"},
            {"name": "r_l", "value": "2"}]},
        "parameters": [LR, MOMENTUM, {"name": "epochs", "parameterType": "int",
                                      "feasibleSpace": {"min": "1", "max": "1"}}]},
    "distributions": {"algorithm": {"algorithmName": "tpe"}, "parameters": [
        {"name": "lr", "parameterType": "double",
         "feasibleSpace": {"min": "1", "max": "5", "step": "0.1", "distribution": "uniform"}},
        {"name": "momentum", "parameterType": "double",
         "feasibleSpace": {"min": "0.001", "max": "3", "distribution": "logUniform"}},
        {"name": "batch_size", "parameterType": "int",
         "feasibleSpace": {"min": "32", "max": "64", "distribution": "logNormal"}},
        {"name": "dropout", "parameterType": "double",
         "feasibleSpace": {"min": "0.1", "max": "0.5", "distribution": "normal"}},
        {"name": "optimizer", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam"]}},
        {"name": "layers", "parameterType": "discrete", "feasibleSpace": {"list": ["2", "4", "8"]}}]},
    "medianstop": {"earlyStopping": {"algorithmName": "medianstop", "algorithmSettings": [
        {"name": "min_trials_required", "value": "1"}, {"name": "start_step", "value": "2"}]}},
    "file-text": {"objective": {"type": "maximize", "goal": 0.99, "objectiveMetricName": "accuracy",
                                "additionalMetricNames": ["loss"]},
                  "metricsCollectorSpec": {"collector": {"kind": "File"}, "source": {
                      "filter": {"metricsFormat": [KATIB_FILE_FORMAT]},
                      "fileSystemPath": {"path": "/katib/mnist.log", "kind": "File"}}}},
    "file-json": {"objective": {"type": "maximize", "goal": 0.99, "objectiveMetricName": "accuracy",
                                "additionalMetricNames": ["loss"]},
                  "metricsCollectorSpec": {"collector": {"kind": "File"}, "source": {
                      "fileSystemPath": {"path": "/katib/mnist.json", "kind": "File", "format": "JSON"}}}},
    "tensorflow-event": {"metricsCollectorSpec": {"collector": {"kind": "TensorFlowEvent"}, "source": {
        "fileSystemPath": {"path": "/logs/test", "kind": "Directory"}}}},
    "stdout-filter": {"metricsCollectorSpec": {"collector": {"kind": "StdOut"}, "source": {
        "filter": {"metricsFormat": [r"([\w|-]+)\s*:\s*((-?\d+)(\.\d+)?)"]}}}},
    "push": {"metricsCollectorSpec": {"collector": {"kind": "Push"}}},
    "strategies": {"objective": {"type": "minimize", "goal": 0.001, "objectiveMetricName": "loss",
                                 "additionalMetricNames": ["accuracy"],
                                 "metricStrategies": [{"name": "accuracy", "value": "max"},
                                                      {"name": "loss", "value": "min"}]}},
    "resume": {"resumePolicy": "LongRunning"},
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_katib_shaped_files_are_accepted_as_a_spec_body_and_as_an_experiment(shape: str) -> None:
    body = _parse(_spec(**SHAPES[shape]))
    experiment = _parse(_experiment(**SHAPES[shape]))
    assert body.algorithm == experiment.algorithm
    assert body.parameters == experiment.parameters
    assert body.metrics_collector == experiment.metrics_collector
    assert body.trial_template is None and experiment.trial_template is not None
    # What a study stores comes back as the same spec.
    assert _parse(body.to_dict()) == body
    assert _parse(experiment.to_dict()) == experiment


def test_a_file_written_like_katibs_own_yaml_is_read() -> None:
    text = textwrap.dedent("""\
        ---
        apiVersion: kubeflow.org/v1beta1
        kind: Experiment
        metadata:
          namespace: kubeflow
          name: tfjob-with-summaries
        spec:
          objective:
            type: maximize
            goal: 0.99
            objectiveMetricName: accuracy
          algorithm:
            algorithmName: random
          metricsCollectorSpec:
            source:
              fileSystemPath:
                path: /logs/test
                kind: Directory
            collector:
              kind: TensorFlowEvent
          parameters:
            - name: learning_rate
              parameterType: double
              feasibleSpace: {min: "0.01", max: "0.05"}
            - name: batch_size
              parameterType: int
              feasibleSpace: {min: "32", max: "64"}
          trialTemplate:
            primaryContainerName: tensorflow
            trialParameters:
              - {name: learningRate, reference: learning_rate}
              - {name: batchSize, reference: batch_size}
            trialSpec:
              apiVersion: kubeflow.org/v1
              kind: TFJob
              spec:
                tfReplicaSpecs:
                  Worker:
                    replicas: 2
                    template:
                      spec:
                        containers:
                          - name: tensorflow
                            image: tf-mnist:latest
                            command: [python, train.py, "--lr=${trialParameters.learningRate}"]
                            args: ["--batch-size=${trialParameters.batchSize}"]
        """)
    spec = parse_tuning(text)
    assert spec.metrics_collector.kind == "TensorFlowEvent"
    assert spec.metrics_collector.path == "/logs/test"
    assert spec.trial_command("ignored", {"learning_rate": 0.02, "batch_size": 48}, "tune-1-trial-3") == (
        "python train.py --lr=0.02 --batch-size=48")
    assert spec.to_dict()["trialTemplate"]["successCondition"] == (
        'status.conditions.#(type=="Succeeded")#|#(status=="True")#')


def test_katibs_defaults_are_applied() -> None:
    spec = _parse({"objective": {"type": "maximize", "objectiveMetricName": "accuracy",
                                 "additionalMetricNames": ["loss"]},
                   "algorithm": {"algorithmName": "random"}, "parameters": [LR]})
    assert spec.parallel_trial_count == 3
    assert spec.max_trial_count is None and spec.max_failed_trial_count is None
    assert spec.resume_policy == "Never"
    assert spec.objective.strategies == (("accuracy", "max"), ("loss", "max"))
    assert spec.metrics_collector.kind == "StdOut"
    assert spec.metrics_collector.patterns == (DEFAULT_METRIC_PATTERN,)
    assert spec.parameters[0].space.distribution == "uniform"
    assert spec.to_dict() == {
        "objective": {"type": "maximize", "objectiveMetricName": "accuracy",
                      "additionalMetricNames": ["loss"],
                      "metricStrategies": [{"name": "accuracy", "value": "max"},
                                           {"name": "loss", "value": "max"}]},
        "algorithm": {"algorithmName": "random"},
        "parallelTrialCount": 3,
        "parameters": [{"name": "lr", "parameterType": "double",
                        "feasibleSpace": {"min": "0.01", "max": "0.05", "distribution": "uniform"}}],
        "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
        "resumePolicy": "Never",
    }
    minimize = _parse(_spec(objective={"type": "minimize", "objectiveMetricName": "loss",
                                       "additionalMetricNames": ["accuracy"],
                                       "metricStrategies": [{"name": "accuracy", "value": "latest"}]}))
    assert minimize.objective.strategies == (("accuracy", "latest"), ("loss", "min"))


def test_collector_defaults_follow_katib() -> None:
    file = _parse(_spec(metricsCollectorSpec={"collector": {"kind": "File"}})).metrics_collector
    assert (file.path, file.path_kind, file.format) == ("/var/log/katib/metrics.log", "File", "TEXT")
    events = _parse(_spec(metricsCollectorSpec={"collector": {"kind": "TensorFlowEvent"}})).metrics_collector
    assert (events.path, events.path_kind, events.format) == ("/var/log/katib/tfevent/", "Directory", "")
    template = _parse(_experiment()).trial_template
    assert template is not None
    assert template.success_condition == 'status.conditions.#(type=="Complete")#|#(status=="True")#'
    assert template.failure_condition == 'status.conditions.#(type=="Failed")#|#(status=="True")#'


def test_algorithm_settings_are_typed() -> None:
    spec = _parse(_spec(**SHAPES["hyperband"]))
    assert spec.algorithm.setting("eta") == 2 and spec.algorithm.setting("r_l") == 2.0
    assert spec.algorithm.setting("resource_name") == "epochs"
    assert spec.to_dict()["algorithm"]["algorithmSettings"][1] == {"name": "eta", "value": "2"}
    cmaes = _parse(_spec(algorithm={"algorithmName": "cmaes", "algorithmSettings": [
        {"name": "restart_strategy", "value": "none"}, {"name": "random_state", "value": "3"}]}))
    assert cmaes.algorithm.setting("restart_strategy", "ipop") is None
    assert cmaes.algorithm.setting("random_state") == 3
    stopping = _parse(_spec(**SHAPES["medianstop"])).early_stopping
    assert stopping is not None and stopping.setting("start_step") == 2


def _parameter(kind: str, **space: Any) -> dict[str, Any]:
    return {"parameters": [LR, {"name": "p", "parameterType": kind, "feasibleSpace": space}]}


P = "tuning.parameters[1]"
# (change to the spec body, the field named, words of the problem)
REFUSALS: list[tuple[dict[str, Any], str, str]] = [
    ({"algorithm": {"algorithmName": "pbt"}}, "tuning.algorithm.algorithmName", "supported: random, grid"),
    ({"algorithm": {"algorithmName": "enas"}}, "tuning.algorithm.algorithmName", "not supported"),
    ({"algorithm": {"algorithmName": "darts"}}, "tuning.algorithm.algorithmName", "not supported"),
    ({"algorithm": {"algorithmName": "hyperopt"}}, "tuning.algorithm.algorithmName",
     "'hyperopt' is not supported"),
    ({"algorithm": {}}, "tuning.algorithm.algorithmName", "is required"),
    ({"algorithm": {"algorithmName": "random", "algorithmSettings": [{"name": "sigma", "value": "1"}]}},
     "tuning.algorithm.algorithmSettings[0].name", "random has no setting 'sigma' (it takes random_state)"),
    ({"algorithm": {"algorithmName": "tpe",
                    "algorithmSettings": [{"name": "n_startup_trials", "value": "-1"}]}},
     "tuning.algorithm.algorithmSettings[0].value", "n_startup_trials must be an integer ≥ 0"),
    ({"algorithm": {"algorithmName": "bayesianoptimization",
                    "algorithmSettings": [{"name": "base_estimator", "value": "XGB"}]}},
     "tuning.algorithm.algorithmSettings[0].value", "one of GP, RF, ET, GBRT"),
    ({"algorithm": {"algorithmName": "bayesianoptimization",
                    "algorithmSettings": [{"name": "acq_func", "value": "UCB"}]}},
     "tuning.algorithm.algorithmSettings[0].value", "acq_func must be one of"),
    ({"algorithm": {"algorithmName": "cmaes", "algorithmSettings": [{"name": "sigma", "value": "0"}]}},
     "tuning.algorithm.algorithmSettings[0].value", "sigma must be a number > 0"),
    ({"algorithm": {"algorithmName": "cmaes"}, "parameters": [LR]},
     "tuning.parameters", "cmaes needs two or more int or double parameters"),
    ({"algorithm": {"algorithmName": "hyperband", "algorithmSettings": [{"name": "r_l", "value": "2"}]}},
     "tuning.algorithm.algorithmSettings", "resource_name and r_l"),
    ({"algorithm": {"algorithmName": "hyperband", "algorithmSettings": [
        {"name": "r_l", "value": "9"}, {"name": "resource_name", "value": "epochs"}]}},
     "tuning.algorithm.algorithmSettings[1].value", "resource_name 'epochs' must name an int or double"),
    ({"algorithm": {"algorithmName": "hyperband", "algorithmSettings": [
        {"name": "r_l", "value": "9"}, {"name": "resource_name", "value": "lr"}]}},
     "tuning.parallelTrialCount", "must be at least 9 for hyperband with eta 3 and r_l 9"),
    ({"algorithm": {"algorithmName": "hyperband", "algorithmSettings": [
        {"name": "r_l", "value": "0"}, {"name": "resource_name", "value": "lr"}]}},
     "tuning.algorithm.algorithmSettings[0].value", "r_l must be a number > 0"),
    ({"algorithm": {"algorithmName": "grid"}}, "tuning.parameters[0].feasibleSpace.step", "is required"),
    ({"algorithm": {"algorithmName": "grid"}, "maxTrialCount": 12, "parameters": [
        {"name": "a", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "3"}},
        {"name": "b", "parameterType": "categorical", "feasibleSpace": {"list": ["x", "y"]}}]},
     "tuning.maxTrialCount", "12 is more than the grid's 6 points"),
    ({"algorithm": {"algorithmName": "grid"}, "maxTrialCount": 12, "parameters": [
        {"name": "a", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "1000"}},
        {"name": "b", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1", "step": "0.01"}}]},
     "tuning.parameters", "more than 10,000 points"),
    ({"earlyStopping": {"algorithmName": "truncation"}}, "tuning.earlyStopping.algorithmName",
     "'truncation' is not supported (supported: medianstop)"),
    ({"earlyStopping": {"algorithmName": "medianstop", "algorithmSettings": [
        {"name": "min_trials_required", "value": "0"}]}},
     "tuning.earlyStopping.algorithmSettings[0].value", "min_trials_required must be an integer ≥ 1"),
    (_parameter("double", min="0.5", max="0.1"), f"{P}.feasibleSpace.max", "must not be less than min (0.5)"),
    (_parameter("categorical"), f"{P}.feasibleSpace.list", "is required"),
    (_parameter("discrete"), f"{P}.feasibleSpace.list", "is required"),
    (_parameter("discrete", list=["1", "two"]), f"{P}.feasibleSpace.list[1]", "discrete values are numbers"),
    (_parameter("categorical", list=["a"], min="1"), f"{P}.feasibleSpace.min", "not used by a categorical"),
    (_parameter("double", min="0", max="1", list=["1"]), f"{P}.feasibleSpace.list", "not used by a double"),
    (_parameter("double", min="0", max="1", step="0"), f"{P}.feasibleSpace.step", "greater than 0"),
    (_parameter("double", min="0", max="1", step="-0.1"), f"{P}.feasibleSpace.step", "greater than 0"),
    (_parameter("double", min="0", max="1", step="2"), f"{P}.feasibleSpace.step", "larger than the range"),
    (_parameter("int", min="1.5", max="4"), f"{P}.feasibleSpace.min", "must be an integer"),
    (_parameter("int", min="1", max="4", step="0.5"), f"{P}.feasibleSpace.step", "must be an integer"),
    (_parameter("double", min="low", max="1"), f"{P}.feasibleSpace.min", "must be a number"),
    (_parameter("double", max="1"), f"{P}.feasibleSpace.min", "is required"),
    (_parameter("double", min="0", max="1", distribution="logUniform"), f"{P}.feasibleSpace.min",
     "must be greater than 0 for a logUniform distribution"),
    (_parameter("int", min="-1", max="4", distribution="logNormal"), f"{P}.feasibleSpace.min",
     "greater than 0 for a logNormal"),
    (_parameter("double", min="0", max="1", distribution="poisson"), f"{P}.feasibleSpace.distribution",
     "must be one of uniform, logUniform, normal, logNormal"),
    (_parameter("float", min="0", max="1"), f"{P}.parameterType", "must be one of int, double"),
    ({"parameters": [LR, {"name": "p", "parameterType": "double"}]}, f"{P}.feasibleSpace", "is required"),
    ({"parameters": [LR, LR]}, "tuning.parameters[1].name", "'lr' is a parameter already"),
    ({"parameters": []}, "tuning.parameters", "at least one parameter"),
    ({"objective": {"type": "lowest", "objectiveMetricName": "loss"}}, "tuning.objective.type",
     "must be minimize or maximize"),
    ({"objective": {"type": "minimize"}}, "tuning.objective.objectiveMetricName", "is required"),
    ({"objective": {"type": "minimize", "objectiveMetricName": "loss", "additionalMetricNames": ["loss"]}},
     "tuning.objective.additionalMetricNames", "must not repeat objectiveMetricName"),
    ({"objective": {"type": "minimize", "objectiveMetricName": "loss",
                    "metricStrategies": [{"name": "loss", "value": "mean"}]}},
     "tuning.objective.metricStrategies[0].value", "must be min, max or latest"),
    ({"objective": {"type": "minimize", "objectiveMetricName": "loss",
                    "metricStrategies": [{"name": "acc", "value": "max"}]}},
     "tuning.objective.metricStrategies[0].name", "neither the objective metric nor an additional metric"),
    ({"objective": {"type": "minimize", "objectiveMetricName": "loss", "goal": "low"}},
     "tuning.objective.goal", "valid number"),
    ({"maxTrialCount": 0}, "tuning.maxTrialCount", "must be greater than 0"),
    ({"parallelTrialCount": 0}, "tuning.parallelTrialCount", "must be greater than 0"),
    ({"maxFailedTrialCount": -1}, "tuning.maxFailedTrialCount", "must not be less than 0"),
    ({"maxFailedTrialCount": 13}, "tuning.maxFailedTrialCount", "must not exceed maxTrialCount (12)"),
    ({"parallelTrialCount": 13}, "tuning.parallelTrialCount", "must not exceed maxTrialCount (12)"),
    ({"parallelTrialCount": None, "maxTrialCount": 2, "maxFailedTrialCount": 1}, "tuning.parallelTrialCount",
     "the default 3 must not exceed maxTrialCount (2)"),
    ({"maxTrialCount": "12"}, "tuning.maxTrialCount", "valid integer"),
    ({"resumePolicy": "Always"}, "tuning.resumePolicy", "must be one of Never, LongRunning, FromVolume"),
    ({"nasConfig": {"graphConfig": {"numLayers": 8}}}, "tuning.nasConfig", "not supported"),
    ({"maxTrials": 3}, "tuning.maxTrials", "is not a field of a Katib v1beta1 Experiment"),
    ({"parameters": [{**LR, "feasibleSpace": {"min": "0", "max": "1", "stepp": "0.1"}}]},
     "tuning.parameters[0].feasibleSpace.stepp", "is not a field"),
    ({"metricsCollectorSpec": {"collector": {"kind": "PrometheusMetric"}}},
     "tuning.metricsCollectorSpec.collector.kind", "PrometheusMetric is not supported"),
    ({"metricsCollectorSpec": {"collector": {"kind": "Custom", "customCollector": {"name": "c"}}}},
     "tuning.metricsCollectorSpec.collector.kind", "Custom is not supported"),
    ({"metricsCollectorSpec": {"collector": {"kind": "Syslog"}}},
     "tuning.metricsCollectorSpec.collector.kind",
     "must be one of StdOut, File, TensorFlowEvent, Push, None"),
    ({"metricsCollectorSpec": {"collector": {"kind": "File"},
                               "source": {"fileSystemPath": {"path": "m.log"}}}},
     "tuning.metricsCollectorSpec.source.fileSystemPath.path", "must be an absolute path"),
    ({"metricsCollectorSpec": {"collector": {"kind": "File"},
                               "source": {"fileSystemPath": {"path": "/m.log", "kind": "Directory"}}}},
     "tuning.metricsCollectorSpec.source.fileSystemPath.kind", "must be File"),
    ({"metricsCollectorSpec": {"collector": {"kind": "File"},
                               "source": {"fileSystemPath": {"path": "/m.log", "format": "CSV"}}}},
     "tuning.metricsCollectorSpec.source.fileSystemPath.format", "must be TEXT or JSON"),
    ({"metricsCollectorSpec": {"collector": {"kind": "File"}, "source": {
        "fileSystemPath": {"path": "/m.json", "format": "JSON"}, "filter": {"metricsFormat": ["(a)=(b)"]}}}},
     "tuning.metricsCollectorSpec.source.filter", "must be left out when the metrics file is JSON"),
    ({"metricsCollectorSpec": {"collector": {"kind": "TensorFlowEvent"},
                               "source": {"fileSystemPath": {"path": "/logs", "format": "TEXT"}}}},
     "tuning.metricsCollectorSpec.source.fileSystemPath.format", "must be left out"),
    ({"metricsCollectorSpec": {"collector": {"kind": "StdOut"},
                               "source": {"filter": {"metricsFormat": [r"(\w+=\d+"]}}}},
     "tuning.metricsCollectorSpec.source.filter.metricsFormat[0]", "is not a valid regular expression"),
    ({"metricsCollectorSpec": {"collector": {"kind": "StdOut"},
                               "source": {"filter": {"metricsFormat": [r"(\w+)=\d+"]}}}},
     "tuning.metricsCollectorSpec.source.filter.metricsFormat[0]", "exactly two top-level groups"),
    ({"metricsCollectorSpec": {"collector": {"kind": "StdOut"},
                               "source": {"filter": {"metricsFormat": [r"((\w+))=(\d+)"]}}}},
     "tuning.metricsCollectorSpec.source.filter.metricsFormat[0]", "exactly two top-level groups"),
    ({"metricsCollectorSpec": {"collector": {"kind": "StdOut"},
                               "source": {"fileSystemPath": {"path": "/m.log"}}}},
     "tuning.metricsCollectorSpec.source.fileSystemPath", "is not used by the StdOut collector"),
]


@pytest.mark.parametrize(("change", "field", "problem"), REFUSALS, ids=[f"{r[1]}:{r[2]}" for r in REFUSALS])
def test_bad_spec_bodies_are_refused_naming_the_field(
    change: dict[str, Any], field: str, problem: str,
) -> None:
    body = {key: value for key, value in _spec(**change).items() if value is not None}
    error = _refused(body)
    assert (error.field, problem in error.problem) == (field, True), error.problem
    # The same mistake in an Experiment names the field under spec.
    document = _experiment(**change)
    document["spec"] = {key: value for key, value in document["spec"].items() if value is not None}
    in_experiment = _refused(document)
    assert in_experiment.field.replace("tuning.spec.", "tuning.", 1) == field


def _template(**changes: Any) -> dict[str, Any]:
    return {**LR_MOMENTUM_TEMPLATE, **changes}


T = "tuning.spec.trialTemplate"
TEMPLATE_REFUSALS: list[tuple[dict[str, Any], str, str]] = [
    (_template(trialParameters=[{"name": "learningRate", "reference": "lr"}]),
     f"{T}.trialSpec.spec.template.spec.containers[1].command[4]",
     "${trialParameters.momentum} is not declared in trialTemplate.trialParameters"),
    (_template(trialParameters=[*LR_MOMENTUM_TEMPLATE["trialParameters"],
                                {"name": "bs", "reference": "batch"}]),
     f"{T}.trialParameters[2].reference",
     "'batch' is not a parameter of this study (parameters: lr, momentum)"),
    (_template(trialParameters=[{"name": "learningRate", "reference": "lr"},
                                {"name": "momentum", "reference": "${trialSpec.Namespace}"}]),
     f"{T}.trialParameters[1].reference", "${trialSpec.Namespace} is not supported"),
    (_template(trialParameters=[{"name": "learningRate", "reference": "lr"},
                                {"name": "momentum", "reference": "${trialSpec.Labels[team]}"}]),
     f"{T}.trialParameters[1].reference", "${trialSpec.Labels[team]} is not supported"),
    (_template(trialParameters=[{"name": "learningRate", "reference": "lr"},
                                {"name": "learningRate", "reference": "momentum"}]),
     f"{T}.trialParameters[1].name", "'learningRate' is declared twice"),
    (_template(trialParameters=[{"name": "learningRate", "reference": "lr"},
                                {"name": "momentum", "reference": "lr"}]),
     f"{T}.trialParameters[1].reference", "'lr' is referenced twice"),
    (_template(trialParameters=[{"name": "learningRate"}]), f"{T}.trialParameters[0]",
     "needs a name and a reference"),
    (_template(trialParameters=[*LR_MOMENTUM_TEMPLATE["trialParameters"],
                                {"name": "trialName", "reference": "${trialSpec.Name}"}]),
     f"{T}.trialParameters[2].name",
     "${trialParameters.trialName} is not used in the primary container's command"),
    (_template(primaryContainerName="trainer"), f"{T}.primaryContainerName",
     "no container named 'trainer' in the trialSpec's pod templates"),
    (_template(configMap={"configMapName": "trial-templates", "configMapNamespace": "kubeflow",
                          "templatePath": "default.yaml"}, trialSpec=None),
     f"{T}.configMap", "ConfigMap are not supported"),
    (_template(trialSpec=None), f"{T}.trialSpec", "is required"),
    (_template(trialSpec={"kind": "Job", "spec": {}}), f"{T}.trialSpec", "needs apiVersion and kind"),
    (_template(trialSpec={**_job("python3", "train.py"), "metadata": {"name": "fixed"}}),
     f"{T}.trialSpec.metadata.name", "must be left out"),
    (_template(trialParameters=[], trialSpec=_job()),
     f"{T}.trialSpec.spec.template.spec.containers[1].command", "is required"),
    (_template(trialParameters=[], trialSpec=_job("python3", 16)),  # type: ignore[arg-type]
     f"{T}.trialSpec.spec.template.spec.containers[1].command", "must be a list of strings"),
    (_template(retain="yes"), f"{T}.retain", "valid boolean"),
]


@pytest.mark.parametrize(("template", "field", "problem"), TEMPLATE_REFUSALS,
                         ids=[f"{r[1]}:{r[2]}" for r in TEMPLATE_REFUSALS])
def test_bad_trial_templates_are_refused_naming_the_field(
    template: dict[str, Any], field: str, problem: str,
) -> None:
    document = _experiment(trialTemplate={key: value for key, value in template.items() if value is not None})
    error = _refused(document)
    assert (error.field, problem in error.problem) == (field, True), error.problem


@pytest.mark.parametrize(("text", "field", "problem"), [
    ("objective: [", "tuning", "is not valid YAML"),
    ("- objective", "tuning", "must be a mapping"),
    ("just words", "tuning", "must be a mapping"),
    ("", "tuning", "must be a mapping"),
    ("a: &x [1, 2]\nb: [*x, *x]", "tuning", "aliases (*name) are not accepted"),
    ("apiVersion: kubeflow.org/v1\nkind: Experiment\nspec: {}", "tuning.apiVersion",
     "must be kubeflow.org/v1beta1"),
    ("apiVersion: kubeflow.org/v1beta1\nkind: Trial\nspec: {}", "tuning.kind", "must be Experiment"),
    ("apiVersion: batch/v1\nkind: Job\nspec: {}", "tuning.apiVersion", "must be kubeflow.org/v1beta1"),
    ("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\n", "tuning.spec", "is required"),
    ("apiVersion: kubeflow.org/v1beta1\nkind: Experiment\nstatus: {}\nspec: {}", "tuning.status",
     "is not a field"),
])
def test_files_that_are_not_katib_tuning_files_are_refused(text: str, field: str, problem: str) -> None:
    error = _refused(text)
    assert (error.field, problem in error.problem) == (field, True), error.problem


def test_the_product_form_appends_each_parameter_as_a_flag() -> None:
    spec = _parse(_spec(parameters=[LR, {**EPOCHS, "name": "-e"},
                                    {"name": "--optimizer", "parameterType": "categorical",
                                     "feasibleSpace": {"list": ["adam", "sgd"]}}]))
    command = spec.trial_command("python train.py", {"lr": 0.01, "-e": 3, "--optimizer": "adam"}, "t-1")
    assert command == "python train.py --lr=0.01 -e=3 --optimizer=adam"
    with pytest.raises(InvalidArgument) as missing:
        spec.trial_command("python train.py", {"lr": 0.01}, "t-1")
    assert missing.value.field == "assignment"


HOSTILE = ["a b", "it's", '"$(touch /tmp/x)"', "`id`; rm -rf ~", "$HOME", "x\ny"]


def _argv(command: str) -> list[str]:
    """What the trial's process receives: the command run by a shell, as runs are."""
    shown = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=True, timeout=30)
    return shown.stdout.split("\0")[:-1]


def test_values_cannot_inject_shell_in_the_product_form() -> None:
    spec = _parse(_spec(parameters=[{"name": "opt", "parameterType": "categorical",
                                     "feasibleSpace": {"list": HOSTILE}}]))
    for value in HOSTILE:
        command = spec.trial_command("printf '%s\\0'", {"opt": value}, "t-1")
        assert _argv(command) == [f"--opt={value}"]


def test_values_cannot_inject_shell_in_a_template_command_or_shell_script() -> None:
    hostile = [{"name": "lr", "parameterType": "categorical", "feasibleSpace": {"list": HOSTILE}}, MOMENTUM]
    listed = _parse(_experiment(parameters=hostile))
    script = _parse(_experiment(parameters=hostile, trialTemplate=_template(trialSpec=_job(
        "/bin/sh", "-c", "printf '%s\\0' x${trialParameters.learningRate} --m=${trialParameters.momentum}"))))
    assert listed.trial_template is not None and listed.trial_template.script is None
    assert script.trial_template is not None and script.trial_template.script is not None
    for value in HOSTILE:
        words = _argv(listed.trial_command("unused", {"lr": value, "momentum": 0.5}, "t-1").replace(
            "python3 train.py", "printf '%s\\0'", 1))
        assert words == ["--epochs=1", f"--lr={value}", "--momentum=0.5"]
        assert _argv(script.trial_command("unused", {"lr": value, "momentum": 0.5}, "t-1")) == [
            f"x{value}", "--m=0.5"]


def test_a_shell_form_stays_one_script_and_the_trial_name_is_substituted() -> None:
    spec = _parse(_experiment(trialTemplate=_template(
        trialParameters=[*LR_MOMENTUM_TEMPLATE["trialParameters"],
                         {"name": "trialName", "reference": "${trialSpec.Name}"}],
        trialSpec=_job("sh", "-c", "cd src && python3 train.py --lr=${trialParameters.learningRate} "
                       "--momentum=${trialParameters.momentum} --out=/tmp/${trialParameters.trialName}"))))
    command = spec.trial_command("python train.py", {"lr": 0.02, "momentum": 0.6}, "tune-1-trial-4")
    assert command == "cd src && python3 train.py --lr=0.02 --momentum=0.6 --out=/tmp/tune-1-trial-4"


def test_args_follow_the_command_and_the_container_is_found_in_any_pod_template() -> None:
    spec = _parse(_experiment(trialTemplate=_template(primaryContainerName="pytorch", trialSpec={
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "spec": {"pytorchReplicaSpecs": {
            "Master": {"replicas": 1, "template": {"spec": {"containers": [{
                "name": "pytorch", "command": ["python3", "train.py"],
                "args": ["--lr", "${trialParameters.learningRate}",
                         "--momentum=${trialParameters.momentum}"]}]}}}}}})))
    command = spec.trial_command("", {"lr": 0.03, "momentum": 0.7}, "t")
    assert command == "python3 train.py --lr 0.03 --momentum=0.7"


OBSERVATIONS = [("loss", 0.5), ("accuracy", 0.7), ("loss", 0.2), ("accuracy", 0.9), ("loss", 0.3),
                ("accuracy", 0.8)]


@pytest.mark.parametrize(("strategy", "expected"), [("min", 0.2), ("max", 0.5), ("latest", 0.3)])
def test_the_objective_value_follows_its_strategy(strategy: str, expected: float) -> None:
    spec = _parse(_spec(objective={"type": "minimize", "objectiveMetricName": "loss",
                                   "additionalMetricNames": ["accuracy"],
                                   "metricStrategies": [{"name": "loss", "value": strategy}]}))
    assert spec.objective_value(OBSERVATIONS) == expected
    assert spec.metric_values(OBSERVATIONS) == {"loss": expected, "accuracy": 0.7}


def test_default_strategies_follow_the_objective_direction() -> None:
    maximize = _parse(_spec(objective={"type": "maximize", "objectiveMetricName": "accuracy",
                                       "additionalMetricNames": ["loss"]}))
    assert maximize.metric_values(OBSERVATIONS) == {"accuracy": 0.9, "loss": 0.5}
    assert maximize.objective_value([("loss", 0.1)]) is None
    assert maximize.objective_value([]) is None


def test_the_goal_is_reached_in_the_objective_direction() -> None:
    minimize = _parse(_spec())
    assert minimize.goal_reached(0.001) and minimize.goal_reached(-1.0) and not minimize.goal_reached(0.01)
    maximize = _parse(_spec(objective={"type": "maximize", "objectiveMetricName": "accuracy", "goal": 0.99}))
    assert maximize.goal_reached(0.995) and not maximize.goal_reached(0.98)
    no_goal = _parse(_spec(objective={"type": "maximize", "objectiveMetricName": "accuracy"}))
    assert not no_goal.goal_reached(1e9)


def test_metric_lines_use_katibs_default_pattern() -> None:
    spec = _parse(_spec(objective={"type": "minimize", "objectiveMetricName": "loss",
                                   "additionalMetricNames": ["val-acc"]}))
    text = ("epoch 1: loss=0.51 val-acc = 0.7 lr=0.01\n"
            "loss=1.5e-3\nloss = -2\nloss=\nloss=.25 note=ok\nLoss=9\nval-acc=0.8\n")
    assert spec.metric_lines(text) == [("loss", 0.51), ("val-acc", 0.7), ("loss", 1.5e-3), ("loss", -2.0),
                                       ("loss", 0.25), ("val-acc", 0.8)]
    assert DEFAULT_METRIC_PATTERN.pattern == r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"


def test_metric_lines_use_the_spec_filters() -> None:
    spec = _parse(_spec(**SHAPES["file-text"]))
    text = "{metricName: accuracy, metricValue: 0.91}\naccuracy=0.5\n{metricName: loss, metricValue: -1.2}\n"
    assert spec.metric_lines(text) == [("accuracy", 0.91), ("loss", -1.2)]
    named = _parse(_spec(metricsCollectorSpec={"collector": {"kind": "StdOut"}, "source": {"filter": {
        "metricsFormat": [r"(?P<name>loss):\s+(?P<value>[\d.]+)", r"(?:score) (loss)=(\d+)"]}}}))
    assert named.metric_lines("loss: 0.4\nscore loss=3\n") == [("loss", 0.4), ("loss", 3.0)]
    escaped = _parse(_spec(metricsCollectorSpec={"collector": {"kind": "StdOut"}, "source": {"filter": {
        "metricsFormat": [r"\((\w+)\)=([\d.]+)", r"[(](\w+)[)]: ([\d.]+)"]}}}))
    assert escaped.metric_lines("(loss)=0.1\n(loss): 0.2\n") == [("loss", 0.1), ("loss", 0.2)]


def test_metric_lines_read_katibs_json_format() -> None:
    spec = _parse(_spec(**SHAPES["file-json"]))
    text = ('{"checkpoint_path": "", "global_step": "0", "loss": "0.22", "timestamp": 1}\n'
            'not json\n[1]\n{"accuracy": 0.93, "loss": "n/a"}\n')
    assert spec.metric_lines(text) == [("loss", 0.22), ("accuracy", 0.93)]


def test_numbers_written_without_quotes_read_as_katibs_strings() -> None:
    spec = _parse(_spec(parameters=[{"name": "lr", "parameterType": "double",
                                     "feasibleSpace": {"min": 0.01, "max": 0.1, "step": 0.01}}],
                        algorithm={"algorithmName": "tpe",
                                   "algorithmSettings": [{"name": "random_state", "value": 3}]}))
    assert (spec.parameters[0].space.min, spec.parameters[0].space.step) == ("0.01", "0.01")
    assert spec.algorithm.setting("random_state") == 3
