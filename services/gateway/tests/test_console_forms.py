"""The console's own logic, without a browser: how forms become API messages, how refusals find
their field, where links and redirects may go. (The pages themselves: tests/browser.)"""

from __future__ import annotations

import grpc
import pytest
from aiohttp.test_utils import make_mocked_request
from google.protobuf.timestamp_pb2 import Timestamp
from shipyard_gateway.entrypoints.console.calls import ConsoleError, console_authorization
from shipyard_gateway.entrypoints.console.edge import local_target, when
from shipyard_gateway.entrypoints.console.lineage import graph_elements, node_link
from shipyard_gateway.entrypoints.console.projects import field_of
from shipyard_gateway.entrypoints.console.repo_forms import source_fields, source_from
from shipyard_gateway.entrypoints.console.run_form import hyperparameters, run_from
from shipyard_gateway.entrypoints.console.runs import chart_series
from shipyard_gateway.entrypoints.console.serving import model_ref, spec_from

from shipyard.contracts.lineage.v1 import lineage_pb2
from shipyard.contracts.repo.v1 import repos_pb2
from shipyard.contracts.run.v1 import runs_pb2


def _refused(message: str, field: str) -> ConsoleError:
    return ConsoleError(grpc.StatusCode.INVALID_ARGUMENT, message, field=field)


@pytest.mark.parametrize(("message", "named", "field"), [
    ("project.name: may contain only letters", "project.name", "name"),
    ("repo.source.s3.bucket: must be 3 to 63 characters", "repo.source.s3.bucket", "s3.bucket"),
    ("spec.min_replicas: must be between 1 and 20", "spec.min_replicas", "min_replicas"),
    ("run.hyperparameters: line 1: write name=value", "run.hyperparameters", "hyperparameters"),
    ("no catalog entry named 'x'", "", ""),
    ("a sentence: with a colon", "", ""),
])
def test_a_refusal_finds_the_form_field_it_names(message: str, named: str, field: str) -> None:
    assert field_of(_refused(message, named)) == field


def test_the_field_comes_from_the_status_details_not_the_message() -> None:
    assert field_of(_refused("project.name: may contain only letters", "")) == ""
    assert field_of(_refused("the name is wrong", "project.name")) == "name"


def test_the_consoles_own_refusals_name_their_field_as_the_services_do() -> None:
    refused = ConsoleError.invalid("spec.min_replicas", "must be a whole number")
    assert (refused.code, refused.message) == (grpc.StatusCode.INVALID_ARGUMENT,
                                               "spec.min_replicas: must be a whole number")
    assert field_of(refused) == "min_replicas"


@pytest.mark.parametrize(("target", "safe"), [
    ("/runs?status=running", "/runs?status=running"),
    ("//evil.example/x", "/"),
    ("https://evil.example/", "/"),
    ("/\\evil", "/"),
    ("", "/"),
    (None, "/"),
    # Browsers drop tabs and line breaks from URLs: these become //evil.example.
    ("/\t/evil.example", "/"),
    ("/\n/evil.example", "/"),
    ("/\r\n/evil.example", "/"),
    ("/ /evil.example", "/"),
    ("/runs\x00", "/"),
    ("/caf\u00e9", "/"),
    ("javascript:alert(1)", "/"),
    ("runs", "/"),
    ("/", "/"),
    ("/runs/r1/logs#end", "/runs/r1/logs#end"),
])
def test_redirects_after_sign_in_stay_on_this_site(target: str | None, safe: str) -> None:
    assert local_target(target) == safe


def test_the_console_cookie_authorizes_only_requests_from_the_console_itself() -> None:
    same = make_mocked_request("POST", "/serving/x/v2/models/m/infer",
                               headers={"Host": "console.local", "Origin": "http://console.local",
                                        "Cookie": "shipyard_token=t0k"})
    assert console_authorization(same) == "Session t0k"  # the cookie takes only a console session
    other = make_mocked_request("POST", "/serving/x/v2/models/m/infer",
                                headers={"Host": "console.local", "Origin": "http://evil.example",
                                         "Cookie": "shipyard_token=t0k"})
    assert console_authorization(other) is None
    anonymous = make_mocked_request("POST", "/serving/x", headers={"Host": "console.local"})
    assert console_authorization(anonymous) is None


def test_hyperparameters_are_name_value_lines_and_a_bad_line_is_named() -> None:
    assert hyperparameters("lr=0.1\n\nepochs = 8, optimizer=adam") == {"lr": "0.1", "epochs": "8",
                                                                     "optimizer": "adam"}
    with pytest.raises(ConsoleError, match=r"run.hyperparameters: line 2: write name=value"):
        hyperparameters("lr=0.1\njust words")


def test_the_run_form_becomes_a_run() -> None:
    values = {"name": "train-1", "kind": "training", "command": "python train.py", "tags": "a, b,",
              "gpus": "1", "input0.kind": "dataset", "input0.repo": "digits", "input0.version": "2",
              "input0.mount_path": "/mnt/data", "input1.repo": "", "output0.kind": "model",
              "output0.repo": "digits-model", "hyperparameters": "lr=0.1"}
    run = run_from(values, "vision")
    assert (run.name, run.project, run.kind, run.gpus) == ("train-1", "vision", runs_pb2.RUN_KIND_TRAINING, 1)
    assert list(run.tags) == ["a", "b"] and dict(run.hyperparameters) == {"lr": "0.1"}
    assert [(i.repo, i.version, i.mount_path) for i in run.inputs] == [("digits", 2, "/mnt/data")]
    assert [(o.repo_kind, o.repo) for o in run.outputs] == [("model", "digits-model")]
    with pytest.raises(ConsoleError, match=r"run\.gpus: must be a whole number"):
        run_from({**values, "gpus": "two"}, "")
    with pytest.raises(ConsoleError, match=r"run\.kind"):
        run_from({**values, "kind": "dreaming"}, "")


def test_each_source_offers_the_fields_of_its_contract() -> None:
    s3 = [f["name"] for f in source_fields("s3")]
    assert s3 == [f.name for f in repos_pb2.S3Source.DESCRIPTOR.fields]
    assert {f["name"]: f["type"] for f in source_fields("sql")}["port"] == "number"
    assert {f["name"]: f["type"] for f in source_fields("url")}["extract"] == "checkbox"
    assert "filename" not in [f["name"] for f in source_fields("upload")]  # the upload names it
    assert source_fields("none") == []


def test_the_chosen_sources_values_become_the_source() -> None:
    values = {"s3.bucket": "datasets", "s3.prefix": "mnist/", "s3.aws": "on", "git.url": "ignored"}
    source = source_from("s3", values, "")
    assert source.WhichOneof("kind") == "s3"
    assert (source.s3.bucket, source.s3.prefix, source.s3.aws) == ("datasets", "mnist/", True)
    assert source_from("upload", {"upload.extract": "on"}, "data.zip").upload.filename == "data.zip"
    assert source_from("none", {}, "").WhichOneof("kind") == "none"
    with pytest.raises(ConsoleError, match=r"repo\.source\.sql\.port: must be a whole number"):
        source_from("sql", {"sql.port": "abc"}, "")


def test_model_references_and_serving_specs_from_forms() -> None:
    assert (model_ref("mnist@3").model, model_ref("mnist@3").version) == ("mnist", 3)
    assert model_ref(" mnist ").version == 0
    with pytest.raises(ConsoleError, match="name@version"):
        model_ref("mnist@three")
    spec = spec_from({"framework": "custom", "predictor": "m:C", "min_replicas": "1", "max_replicas": "3",
                      "max_concurrency": "", "transformer_code": "prep", "transformer_script": "t.py"})
    assert (spec.framework, spec.min_replicas, spec.max_replicas, spec.max_concurrency) == ("custom", 1, 3, 0)
    assert (spec.transformer.code, spec.transformer.script) == ("prep", "t.py")
    with pytest.raises(ConsoleError, match=r"spec\.gpus: must be a whole number"):
        spec_from({"gpus": "many"})


def test_metric_series_for_the_charts() -> None:
    metrics = runs_pb2.GetRunMetricsResponse(series=[runs_pb2.MetricSeries(name="loss", points=[
        runs_pb2.MetricPoint(step=1, value=0.5), runs_pb2.MetricPoint(step=2, value=0.25)])])
    assert chart_series(metrics) == [{"name": "loss", "steps": [1, 2], "values": [0.5, 0.25]}]


def test_lineage_nodes_link_to_their_pages() -> None:
    def node(kind: str, label: str) -> lineage_pb2.Node:
        return lineage_pb2.Node(id=f"{kind}:{label}", kind=kind, label=label)
    assert node_link(node("run", "train-1")) == "/runs/train-1"
    assert node_link(node("model", "mnist@3")) == "/repos/models/mnist/versions/3"
    assert node_link(node("dataset", "digits@1")) == "/repos/datasets/digits/versions/1"
    assert node_link(node("code", "train@1a2b3c")) == "/repos/code/train"
    assert node_link(node("deployment", "live")) == "/deployments/live"
    assert node_link(node("image", "python:3.11")) == ""
    graph = lineage_pb2.Graph(root="run:train-1", nodes=[node("run", "train-1"), node("model", "mnist@3")],
                              edges=[lineage_pb2.Edge(source="run:train-1", target="model:mnist@3",
                                                      relation="produced")])
    elements = graph_elements(graph)
    assert elements[0]["data"]["root"] is True and elements[1]["data"]["root"] is False
    assert elements[2]["data"] == {"id": "run:train-1->model:mnist@3", "source": "run:train-1",
                                   "target": "model:mnist@3", "label": "produced"}


def test_times_read_as_people_read_them() -> None:
    assert when(Timestamp()) == "—"
    assert when(Timestamp(seconds=1_764_400_000)) == "2025-11-29 07:06:40"
