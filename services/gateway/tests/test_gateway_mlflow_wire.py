"""The MLflow edge's own logic, without a stack: MLflow's error codes, proto3-JSON values, the name
filters, where an artifact path points, and what a model version's source names."""

from __future__ import annotations

import math

import grpc
import pytest
from shipyard_gateway.entrypoints.mlflow.artifacts import locate
from shipyard_gateway.entrypoints.mlflow.registry import source_of
from shipyard_gateway.entrypoints.mlflow.tracking import NameFilter
from shipyard_gateway.entrypoints.mlflow.wire import MlflowError, Params, as_float, from_status, json_number

RUN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("code", "expected"), [
    (grpc.StatusCode.NOT_FOUND, ("RESOURCE_DOES_NOT_EXIST", 404)),
    (grpc.StatusCode.ALREADY_EXISTS, ("RESOURCE_ALREADY_EXISTS", 400)),
    (grpc.StatusCode.INVALID_ARGUMENT, ("INVALID_PARAMETER_VALUE", 400)),
    (grpc.StatusCode.PERMISSION_DENIED, ("PERMISSION_DENIED", 403)),
    (grpc.StatusCode.UNAUTHENTICATED, ("UNAUTHENTICATED", 401)),
    (grpc.StatusCode.INTERNAL, ("INTERNAL_ERROR", 500)),
])
def test_platform_errors_become_mlflows(code: grpc.StatusCode, expected: tuple[str, int]) -> None:
    error = from_status(code, "why")
    assert (error.error_code, error.status, error.message) == (*expected, "why")


def test_values_are_read_and_written_as_proto3_json() -> None:
    params = Params({"max_results": ["5"]}, {"timestamp": "1796650071730", "value": "NaN"})
    assert params.integer("timestamp") == 1796650071730 and params.integer("max_results") == 5
    assert math.isnan(params.number("value"))
    assert as_float("v", "-Infinity") == -math.inf and as_float("v", 2) == 2.0
    assert (json_number(math.nan), json_number(math.inf), json_number(0.5)) == ("NaN", "Infinity", 0.5)
    with pytest.raises(MlflowError, match="must be an integer"):
        Params({}, {"step": "two"}).integer("step")
    with pytest.raises(MlflowError, match="required parameter 'key'"):
        Params({}, {}).string("key", required=True)


def test_name_filters_take_equality_and_like_and_refuse_the_rest() -> None:
    assert NameFilter.parse("name = 'churn'", "model").matches("churn")
    assert not NameFilter.parse("name = 'churn'", "model").matches("churn-2")
    assert NameFilter.parse("name LIKE 'ch%'", "model").matches("churn")
    assert NameFilter.parse("name ILIKE 'CH%' AND run_id = 'r'", "version", keys=("name", "run_id")).matches(
        "churn", run_id="r")
    with pytest.raises(MlflowError, match="Invalid filter"):
        NameFilter.parse("tags.x = 'y'", "model")


def test_artifact_paths_point_at_a_run_a_logged_model_or_a_model_version_and_never_climb() -> None:
    run = locate(f"vision/{RUN}/artifacts/plots/loss.png")
    assert (run.owner is not None and run.owner.run_id, run.path) == (RUN, "plots/loss.png")
    model = locate("0/models/m-1/artifacts/MLmodel")
    assert (model.owner is not None and model.owner.model_id, model.path) == ("m-1", "MLmodel")
    version = locate("_registry/churn/3/model.pkl")
    assert (version.owner, version.repo, version.version, version.path) == (None, "churn", 3, "model.pkl")
    climbing = (f"0/{RUN}/artifacts/../x", f"0/{RUN}/artifacts//etc/passwd", "/abs", f"0/{RUN}/artifacts/./x")
    for bad in climbing:
        with pytest.raises(MlflowError, match="Invalid path"):
            locate(bad)
    with pytest.raises(MlflowError) as nowhere:
        locate("just/a/path")
    assert nowhere.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_a_versions_source_names_a_runs_or_a_logged_models_artifacts() -> None:
    owner, path = source_of(f"runs:/{RUN}/model", "")
    assert (owner.run_id, path) == (RUN, "model")
    owner, path = source_of(f"mlflow-artifacts:/vision/{RUN}/artifacts/model", "")
    assert (owner.run_id, path) == (RUN, "model")
    owner, path = source_of("models:/m-0a1b", "")
    assert (owner.model_id, path) == ("m-0a1b", "")
    with pytest.raises(MlflowError, match="Invalid source"):
        source_of("s3://bucket/model", "")
