"""``shipyard run …``: the pure helpers, and the commands against a fake client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from google.protobuf.message import Message
from typer.testing import CliRunner

from shipyard.cli import logs, runs
from shipyard.cli.main import app
from shipyard.contracts.run.v1 import runs_pb2 as pb

METHODS = ("SubmitRun", "GetRun", "ListRuns", "StopRun", "ReadRunLogs", "GetRunMetrics")


class FakeClient:
    """Records each call's request and answers with the next canned reply of that method."""

    def __init__(self, **replies: list[Message]) -> None:
        self.runs = SimpleNamespace(**{name: name for name in METHODS})
        self.replies = {name: list(values) for name, values in replies.items()}
        self.calls: list[tuple[str, Message]] = []

    def call(self, method: str, request: Message, timeout: float | None = None) -> Message:
        self.calls.append((method, request))
        return self.replies[method].pop(0)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClient]:
    """A FakeClient in place of ``shipyard.cli.runs.client``; give it replies in the test."""
    client = FakeClient()

    @contextmanager
    def fake_client() -> Iterator[FakeClient]:
        yield client

    monkeypatch.setattr(runs, "client", fake_client)
    yield client


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["run", *args])
    return result.exit_code, result.output


# --- pure helpers ---------------------------------------------------------------------------------

def test_parse_input_with_and_without_version() -> None:
    assert runs.parse_input("digits@3:/mnt/data", "dataset") == pb.RunInput(
        repo_kind="dataset", repo="digits", version=3, mount_path="/mnt/data")
    assert runs.parse_input("clf.v2_x-y:/mnt/m", "model") == pb.RunInput(
        repo_kind="model", repo="clf.v2_x-y", version=0, mount_path="/mnt/m")


@pytest.mark.parametrize("value", ["digits", "digits@3", "digits:mnt/data", "digits:/", "@3:/mnt",
                                   "digits@x:/mnt", "digits@0:/mnt", "digits@-1:/mnt", "digits@3:/mnt data",
                                   "dig its:/mnt", "-digits:/mnt", "digits@@3:/mnt", ""])
def test_parse_input_rejects_bad_syntax(value: str) -> None:
    with pytest.raises(typer.BadParameter) as error:
        runs.parse_input(value, "dataset")
    assert repr(value) in error.value.message
    assert "REPO@VERSION:/mount/path" in error.value.message


def test_parse_output_mount_path_is_optional() -> None:
    assert runs.parse_output("clf", "model") == pb.RunOutputTarget(repo_kind="model", repo="clf")
    assert runs.parse_output("feats:/mnt/out", "featureset") == pb.RunOutputTarget(
        repo_kind="featureset", repo="feats", mount_path="/mnt/out")


@pytest.mark.parametrize("value", ["clf@2", "clf@2:/mnt", "clf:mnt", "clf:", ":/mnt", "c lf"])
def test_parse_output_rejects_bad_syntax(value: str) -> None:
    with pytest.raises(typer.BadParameter) as error:
        runs.parse_output(value, "model")
    assert repr(value) in error.value.message
    assert "REPO:/mount/path" in error.value.message


def test_parse_hyperparameters() -> None:
    assert runs.parse_hyperparameters(["lr=0.01", "expr=a=b", "empty="]) == {
        "lr": "0.01", "expr": "a=b", "empty": ""}
    assert runs.parse_hyperparameters([]) == {}


@pytest.mark.parametrize("values", [["lr"], ["=1"], ["lr=1", "lr=2"]])
def test_parse_hyperparameters_rejects(values: list[str]) -> None:
    with pytest.raises(typer.BadParameter):
        runs.parse_hyperparameters(values)


def test_status_and_kind_names_round_trip() -> None:
    assert runs.status_name(pb.RUN_STATUS_WAITING_FOR_GPUS) == "waiting-for-gpus"
    assert runs.status_name(pb.RUN_STATUS_COMPLETE) == "complete"
    assert runs.status_name(99) == "99"
    assert runs.kind_name(pb.RUN_KIND_PREPROCESSING) == "preprocessing"
    for name, value in runs.STATUSES.items():
        assert runs.parse_status(name) == value
        assert runs.status_name(value) == name
    for name, kind in runs.KINDS.items():
        assert runs.parse_kind(name) == kind
        assert runs.kind_name(kind) == name
    assert len(runs.STATUSES) == len(pb.RunStatus.values()) - 1  # all but UNSPECIFIED
    with pytest.raises(typer.BadParameter):
        runs.parse_status("waiting_for_gpus")
    with pytest.raises(typer.BadParameter):
        runs.parse_kind("inference")


def test_sparkline() -> None:
    assert runs.sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert runs.sparkline([7, 0]) == "█▁"
    assert runs.sparkline([]) == ""
    assert runs.sparkline([2.0, 2.0, 2.0]) == "▄▄▄"
    assert runs.sparkline([0, float("nan"), 1, float("inf")]) == "▁█"
    long = runs.sparkline([float(i) for i in range(100)], width=40)
    assert len(long) == 40
    assert long[0] == "▁" and long[-1] == "█"
    assert list(long) == sorted(long)
    assert runs.sparkline([1.0, 2.0], width=0) == ""


def test_format_metrics_and_duration() -> None:
    assert runs.format_metrics({"loss": 0.2, "acc": 0.91}) == "acc=0.91 loss=0.2"
    assert runs.format_metrics({}) == ""
    assert runs.format_duration(12) == "12s"
    assert runs.format_duration(185) == "3m05s"
    assert runs.format_duration(3725) == "1h02m"
    run = pb.Run(start_time=datetime(2024, 1, 1, 10, 0, tzinfo=UTC))
    assert runs.run_duration(run, datetime(2024, 1, 1, 10, 1, 30, tzinfo=UTC)) == "1m30s"
    run.end_time.FromDatetime(datetime(2024, 1, 1, 10, 0, 5, tzinfo=UTC))
    assert runs.run_duration(run, datetime(2024, 1, 1, 11, 0, tzinfo=UTC)) == "5s"
    assert runs.run_duration(pb.Run(), datetime.now(UTC)) == "—"


def test_build_submit_request() -> None:
    options = runs.SubmitOptions(
        name="train-1", command="python train.py", kind=pb.RUN_KIND_EVALUATION,
        inputs=[pb.RunInput(repo_kind="dataset", repo="d", version=2, mount_path="/mnt/d")],
        outputs=[pb.RunOutputTarget(repo_kind="model", repo="m")], hyperparameters={"lr": "0.1"},
        config_name="c.yaml", config_bytes=b"a: 1\n", gpus=2, start_with_available=True, tags=["x", "y"],
        project="p", description="desc", framework="pytorch", framework_version="2.3", image="img:1")
    request = runs.build_submit_request(options, "rid-1")
    assert request.request_id == "rid-1"
    assert request.config_file == b"a: 1\n"
    run = request.run
    assert (run.name, run.command, run.kind) == ("train-1", "python train.py", pb.RUN_KIND_EVALUATION)
    assert list(run.inputs) == options.inputs
    assert list(run.outputs) == options.outputs
    assert dict(run.hyperparameters) == {"lr": "0.1"}
    assert (run.config_file_name, run.gpus, run.start_with_available) == ("c.yaml", 2, True)
    assert list(run.tags) == ["x", "y"]
    assert (run.project, run.description, run.framework, run.framework_version, run.image) == (
        "p", "desc", "pytorch", "2.3", "img:1")
    assert run.status == pb.RUN_STATUS_UNSPECIFIED


# --- commands against a fake client ---------------------------------------------------------------

def test_submit_builds_the_request(fake: FakeClient, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_bytes(b"epochs: 3\n")
    fake.replies["SubmitRun"] = [pb.Run(name="train-1", status=pb.RUN_STATUS_QUEUED)]
    code, output = invoke(
        "submit", "train-1", "--command", "python train.py --epochs 3",
        "--dataset", "digits@3:/mnt/data", "--dataset", "extra:/mnt/extra", "--featureset", "feats:/mnt/f",
        "--model", "base@1:/mnt/base", "--model-out", "clf:/mnt/model", "--hp", "lr=0.01", "--hp", "opt=adam",
        "--config", str(config), "--gpus", "2", "--start-with-available", "--tag", "a", "--tag", "b",
        "--project", "vision", "--description", "first", "--framework", "pytorch",
        "--framework-version", "2.3", "--image", "img:1", "--cluster", "hpc")
    assert code == 0, output
    assert "Submitted run train-1 (queued)" in output
    [(method, request)] = fake.calls
    assert method == "SubmitRun"
    assert isinstance(request, pb.SubmitRunRequest)
    uuid.UUID(request.request_id)  # a fresh uuid4
    assert request.config_file == b"epochs: 3\n"
    run = request.run
    assert (run.name, run.command) == ("train-1", "python train.py --epochs 3")
    assert run.kind == pb.RUN_KIND_TRAINING
    assert [(i.repo_kind, i.repo, i.version, i.mount_path) for i in run.inputs] == [
        ("dataset", "digits", 3, "/mnt/data"), ("dataset", "extra", 0, "/mnt/extra"),
        ("featureset", "feats", 0, "/mnt/f"), ("model", "base", 1, "/mnt/base")]
    assert [(o.repo_kind, o.repo, o.mount_path) for o in run.outputs] == [("model", "clf", "/mnt/model")]
    assert dict(run.hyperparameters) == {"lr": "0.01", "opt": "adam"}
    assert (run.config_file_name, run.gpus, run.start_with_available) == ("train.yaml", 2, True)
    assert list(run.tags) == ["a", "b"]
    assert (run.project, run.description, run.framework, run.framework_version, run.image, run.cluster) == (
        "vision", "first", "pytorch", "2.3", "img:1", "hpc")


def test_submit_preprocessing_with_output_at_the_default_path(fake: FakeClient) -> None:
    fake.replies["SubmitRun"] = [pb.Run(name="prep", status=pb.RUN_STATUS_WAITING_FOR_GPUS)]
    code, output = invoke("submit", "prep", "--command", "make", "--kind", "preprocessing",
                          "--dataset-out", "clean")
    assert code == 0, output
    assert "Submitted run prep (waiting-for-gpus)" in output
    request = fake.calls[0][1]
    assert isinstance(request, pb.SubmitRunRequest)
    assert request.run.kind == pb.RUN_KIND_PREPROCESSING
    assert [(o.repo_kind, o.repo, o.mount_path) for o in request.run.outputs] == [("dataset", "clean", "")]
    assert request.config_file == b"" and request.run.config_file_name == ""


@pytest.mark.parametrize("args", [["--dataset", "digits@3"], ["--hp", "lr"], ["--kind", "inference"],
                                  ["--model-out", "clf@2"]])
def test_submit_rejects_bad_options_before_calling(fake: FakeClient, args: list[str]) -> None:
    code, _ = invoke("submit", "r", "--command", "true", *args)
    assert code == 2
    assert fake.calls == []


def test_list_follows_pages_and_prints_rows(fake: FakeClient) -> None:
    created = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    fake.replies["ListRuns"] = [
        pb.ListRunsResponse(runs=[pb.Run(name="run-a", kind=pb.RUN_KIND_TRAINING,
                                         status=pb.RUN_STATUS_RUNNING, owner="ada", create_time=created,
                                         metrics={"acc": 0.91})],
                            next_page_token="page-2"),
        pb.ListRunsResponse(runs=[pb.Run(name="run-b", kind=pb.RUN_KIND_EVALUATION,
                                         status=pb.RUN_STATUS_FAILED, owner="bob")]),
    ]
    code, output = invoke("list", "--status", "running", "--kind", "training", "--tag", "t",
                          "--prefix", "run-")
    assert code == 0, output
    first, second = (request for _, request in fake.calls)
    assert isinstance(first, pb.ListRunsRequest) and isinstance(second, pb.ListRunsRequest)
    assert (first.status, first.kind, first.tag, first.name_prefix, first.page_size, first.page_token) == (
        pb.RUN_STATUS_RUNNING, pb.RUN_KIND_TRAINING, "t", "run-", 500, "")
    assert second.page_token == "page-2"
    row_a = next(line for line in output.splitlines() if "run-a" in line)
    for value in ("training", "running", "ada", "2024-05-01", "acc=0.91"):  # the time may wrap
        assert value in row_a
    row_b = next(line for line in output.splitlines() if "run-b" in line)
    assert "evaluation" in row_b and "failed" in row_b and "bob" in row_b


def test_list_rejects_an_unknown_status(fake: FakeClient) -> None:
    code, _ = invoke("list", "--status", "done")
    assert code == 2
    assert fake.calls == []


def test_logs_reads_until_empty_and_decodes_split_characters(fake: FakeClient) -> None:
    text = "epoch 1 ✓\n".encode()
    fake.replies["ReadRunLogs"] = [
        pb.ReadRunLogsResponse(data=text[:9], next_offset=9),
        pb.ReadRunLogsResponse(data=text[9:] + b"\xff\n", next_offset=len(text) + 2),
        pb.ReadRunLogsResponse(data=b"", next_offset=len(text) + 2),
    ]
    code, output = invoke("logs", "r1")
    assert code == 0, output
    assert output == "epoch 1 ✓\n\ufffd\n"
    offsets = [r.offset for _, r in fake.calls if isinstance(r, pb.ReadRunLogsRequest)]
    assert offsets == [0, 9, len(text) + 2]


def test_logs_follow_polls_until_finished(fake: FakeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(logs.time, "sleep", sleeps.append)
    fake.replies["ReadRunLogs"] = [
        pb.ReadRunLogsResponse(data=b"a\n", next_offset=2),
        pb.ReadRunLogsResponse(data=b"", next_offset=2),
        pb.ReadRunLogsResponse(data=b"b\n", next_offset=4, finished=True),
    ]
    code, output = invoke("logs", "-f", "r1")
    assert code == 0, output
    assert output == "a\nb\n"
    assert sleeps == [0.5]
    assert len(fake.calls) == 3


def test_get_shows_the_run(fake: FakeClient) -> None:
    fake.replies["GetRun"] = [pb.Run(
        name="r1", kind=pb.RUN_KIND_TRAINING, status=pb.RUN_STATUS_FAILED, status_reason="out of memory",
        exit_code=137, owner="ada", command="python train.py",
        inputs=[pb.RunInput(repo_kind="dataset", repo="digits", version=3, mount_path="/mnt/data")],
        outputs=[pb.RunOutputTarget(repo_kind="model", repo="clf")], hyperparameters={"lr": "0.1"},
        start_time=datetime(2024, 5, 1, 12, 0, tzinfo=UTC), end_time=datetime(2024, 5, 1, 12, 5, tzinfo=UTC),
        metrics={"loss": 0.5}, notes=["inputs were copied"])]
    code, output = invoke("get", "r1")
    assert code == 0, output
    for value in ("failed (out of memory)", "137", "dataset digits@3 → /mnt/data",
                  "model clf ← $SHIPYARD_OUTPUT", "lr=0.1", "loss=0.5", "inputs were copied",
                  "2024-05-01 12:05:00"):
        assert value in output


def test_stop(fake: FakeClient) -> None:
    fake.replies["StopRun"] = [pb.Run(name="r1", status=pb.RUN_STATUS_STOPPING),
                               pb.Run(name="r2", status=pb.RUN_STATUS_STOPPED)]
    assert "Stopping run r1" in invoke("stop", "r1")[1]
    assert "Run r2 is stopped" in invoke("stop", "r2")[1]


def test_metrics_table(fake: FakeClient) -> None:
    fake.replies["GetRunMetrics"] = [pb.GetRunMetricsResponse(series=[pb.MetricSeries(
        name="loss", points=[pb.MetricPoint(step=2, value=0.5), pb.MetricPoint(step=1, value=0.9),
                             pb.MetricPoint(step=3, value=0.25)])])]
    code, output = invoke("metrics", "r1")
    assert code == 0, output
    row = next(line for line in output.splitlines() if "loss" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[:5] == ["loss", "3", "0.25", "0.25", "0.9"]  # sorted by step: the last is step 3's
    if runs.console.width >= 70:  # room for the sparkline
        assert cells[5] == "█▄▁"
