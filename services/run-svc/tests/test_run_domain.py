"""RunSpec.checked names the bad field for every rule; Run moves through its lifecycle."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from run_fakes import a_spec
from shipyard_run.domain.runs import (
    CONFIG_MAX,
    GPUS_MAX,
    Input,
    MetricPoint,
    OutputTarget,
    Run,
    RunKind,
    RunSpec,
    RunStatus,
    check_mount_path,
)

from shipyard.kit.errors import FailedPrecondition, InvalidArgument

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _refused(spec: RunSpec, config_size: int = 0) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        spec.checked(config_size)
    return caught.value


def _data(mount_path: str = "/mnt/data", **changes: Any) -> Input:
    return Input("dataset", "digits", mount_path, **changes)


def _model(mount_path: str = "") -> OutputTarget:
    return OutputTarget("model", "mnist", mount_path)


def test_a_full_valid_spec_is_returned_as_is() -> None:
    spec = a_spec(
        "train-1", project="vision", description="first try\nwith tabs\t", tags=("cnn", "v1.0"),
        inputs=(_data("/mnt/data", version=2), Input("featureset", "feats", "/data/features")),
        outputs=(_model(), OutputTarget("model", "mnist-small", "/model/small")),
        hyperparameters={"lr": "0.01", "BATCH_SIZE": "64", "_x": ""}, config_file_name="config.yaml",
        gpus=GPUS_MAX,
    )
    assert spec.checked(CONFIG_MAX) is spec


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"name": ""}, "run.name", "must not be empty"),
        ({"name": "a/b"}, "run.name", "must not contain '/'"),
        ({"name": "-lead"}, "run.name", "must start with a letter or digit"),
        ({"name": "x" * 64}, "run.name", "at most 63 characters"),
        ({"project": "my project"}, "run.project", "may contain only"),
        ({"code": "acme/trainer"}, "run.code", "must not contain '/'"),
        ({"commit": "a" * 65}, "run.commit", "at most 64 characters"),
        ({"commit": "abc\n"}, "run.commit", "control characters"),
        ({"command": ""}, "run.command", "must not be empty"),
        ({"command": "  \n\t "}, "run.command", "must not be empty"),
        ({"command": "x" * 10_001}, "run.command", "at most 10000 characters"),
        ({"command": "python\x00train.py"}, "run.command", "control characters"),
        ({"description": "d" * 4001}, "run.description", "at most 4000 characters"),
        ({"config_file_name": "conf/a.yaml"}, "run.config_file_name", "must not contain '/'"),
    ],
)
def test_names_texts_and_the_command_are_checked(changes: dict[str, Any], field: str, problem: str) -> None:
    error = _refused(replace(a_spec("ok"), **changes))
    assert error.field == field
    assert problem in error.problem
    assert str(error).startswith(f"{field}: ")


def test_tags_are_counted_and_each_named() -> None:
    assert _refused(a_spec("t", tags=tuple(f"t{i}" for i in range(33)))).field == "run.tags"
    assert a_spec("t", tags=tuple(f"t{i}" for i in range(32))).checked().tags[-1] == "t31"
    error = _refused(a_spec("t", tags=("fine", "not fine")))
    assert (error.field, error.problem) == ("run.tags[1]", "may contain only letters, digits, '.', '_' and "
                                                           "'-', and must start with a letter or digit")


@pytest.mark.parametrize("key", ["1lr", "learning-rate", "lr rate", "", "lr.x", "é"])
def test_hyperparameter_keys_must_be_environment_variable_names(key: str) -> None:
    error = _refused(a_spec("h", hyperparameters={"ok": "1", key: "0.1"}))
    assert error.field == f"run.hyperparameters[{key!r}]"
    assert "valid environment variable name" in error.problem


@pytest.mark.parametrize("key", ["SHIPYARD_OUTPUT", "SHIPYARD_RUN_ID", "shipyard_run_id", "Shipyard_x"])
def test_the_shipyard_prefix_is_reserved(key: str) -> None:
    error = _refused(a_spec("h", hyperparameters={key: "x"}))
    assert error.field == f"run.hyperparameters[{key!r}]"
    assert "SHIPYARD_" in error.problem


def test_hyperparameter_values_are_bounded_single_lines() -> None:
    assert a_spec("h", hyperparameters={"v": "x" * 4096}).checked().hyperparameters["v"] == "x" * 4096
    long = _refused(a_spec("h", hyperparameters={"v": "x" * 4097}))
    assert (long.field, long.problem) == ("run.hyperparameters['v']",
                                          "must be at most 4096 characters (got 4097)")
    newline = _refused(a_spec("h", hyperparameters={"v": "a\nb"}))
    assert (newline.field, newline.problem) == ("run.hyperparameters['v']",
                                                "must not contain control characters")
    many = _refused(a_spec("h", hyperparameters={f"k{i}": "1" for i in range(257)}))
    assert (many.field, many.problem) == ("run.hyperparameters", "at most 256 (got 257)")


@pytest.mark.parametrize("gpus", [-1, GPUS_MAX + 1, 1000])
def test_gpus_out_of_range_are_refused(gpus: int) -> None:
    error = _refused(a_spec("g", gpus=gpus))
    assert (error.field, error.problem) == ("run.gpus", f"must be between 0 and 64 (got {gpus})")


@pytest.mark.parametrize("gpus", [0, 1, GPUS_MAX])
def test_gpus_in_range_pass(gpus: int) -> None:
    assert a_spec("g", gpus=gpus).checked().gpus == gpus


def test_a_config_over_one_mib_is_refused() -> None:
    assert a_spec("c").checked(CONFIG_MAX).name == "c"
    error = _refused(a_spec("c"), CONFIG_MAX + 1)
    assert (error.field, error.problem) == ("config_file", "must be at most 1024 KiB (got 1,048,577 bytes)")


@pytest.mark.parametrize(
    ("mount_path", "problem"),
    [
        ("/etc/data", "must not be /etc or inside it"),
        ("/etc", "must not be /etc or inside it"),
        ("/usr/share/data", "must not be /usr or inside it"),
        ("/proc/1", "must not be /proc or inside it"),
        ("/mnt/../etc/passwd", "must not contain '..'"),
        ("/mnt/data/..", "must not contain '..'"),
        ("mnt/data", "must be an absolute path"),
        ("", "must not be empty"),
        ("/mnt//data", "must not contain '//'"),
        ("/mnt/data/", "must not end with '/'"),
        ("/tmp/data", "must not be /tmp or inside it"),
        ("/var/lib/x", "must not be /var or inside it"),
        ("/run/shipyard", "must not be /run or inside it"),
        ("/boot", "must not be /boot or inside it"),
        ("/lib64/x", "must not be /lib64 or inside it"),
        ("/lib", "must not be /lib or inside it"),
        ("/", "must not be '/'"),
    ],
)
def test_input_mount_paths_are_checked(mount_path: str, problem: str) -> None:
    error = _refused(a_spec("m", inputs=(_data(mount_path),)))
    assert error.field == "run.inputs[0].mount_path"
    assert problem in error.problem


@pytest.mark.parametrize("path", ["/titanic", "/mnist", "/train-data", "/mnt/data", "/model", "/srv/data",
                                  "/opt/ml/input/data/train", "/library", "/variables", "/tmpdata",
                                  "/home/x"])
def test_any_path_outside_the_system_is_a_mount_path(path: str) -> None:
    assert check_mount_path("x", path) == path


def test_output_mount_paths_are_checked_like_input_ones() -> None:
    error = _refused(a_spec("m", outputs=(_model("/usr/local/model"),)))
    assert (error.field, error.problem) == ("run.outputs[0].mount_path", "must not be /usr or inside it")


def test_inputs_are_checked_for_kind_repo_and_version() -> None:
    kind = _refused(a_spec("i", inputs=(Input("bucket", "digits", "/mnt/a"),)))
    assert (kind.field, kind.problem) == ("run.inputs[0].repo_kind",
                                          "must be dataset or featureset or model here (got 'bucket')")
    repo = _refused(a_spec("i", inputs=(_data("/mnt/a"), Input("dataset", "", "/mnt/b"))))
    assert (repo.field, repo.problem) == ("run.inputs[1].repo", "must not be empty")
    version = _refused(a_spec("i", inputs=(_data(version=-1),)))
    assert (version.field, version.problem) == ("run.inputs[0].version", "must not be negative")


@pytest.mark.parametrize(
    ("inputs", "outputs", "field", "problem"),
    [
        ((_data("/mnt/data"), _data("/mnt/data")), (), "run.inputs[1].mount_path",
         "/mnt/data overlaps run.inputs[0].mount_path's mount path /mnt/data"),
        ((_data("/mnt/data"), _data("/mnt/data/sub")), (), "run.inputs[1].mount_path",
         "/mnt/data/sub overlaps run.inputs[0].mount_path's mount path /mnt/data"),
        ((_data("/mnt/data/sub"), _data("/mnt/data")), (), "run.inputs[1].mount_path",
         "/mnt/data overlaps run.inputs[0].mount_path's mount path /mnt/data/sub"),
        ((_data("/mnt/data"),), (_model("/mnt/data/out"),), "run.outputs[0].mount_path",
         "/mnt/data/out overlaps run.inputs[0].mount_path's mount path /mnt/data"),
        ((_data("/model/in"),), (_model("/model"),), "run.outputs[0].mount_path",
         "/model overlaps run.inputs[0].mount_path's mount path /model/in"),
        ((), (_model("/model/a"), _model("/model/a")), "run.outputs[1].mount_path",
         "/model/a overlaps run.outputs[0].mount_path's mount path /model/a"),
    ],
)
def test_overlapping_mount_paths_are_refused(
    inputs: tuple[Input, ...], outputs: tuple[OutputTarget, ...], field: str, problem: str
) -> None:
    error = _refused(a_spec("o", inputs=inputs, outputs=outputs))
    assert (error.field, error.problem) == (field, problem)


def test_siblings_sharing_a_prefix_do_not_overlap() -> None:
    spec = a_spec("o", inputs=(_data("/mnt/data"), _data("/mnt/data2")), outputs=(_model("/mnt/data-out"),))
    assert spec.checked() is spec


def test_only_one_output_may_go_without_a_mount_path() -> None:
    assert a_spec("o", outputs=(_model(), _model("/model/b"))).checked().outputs[0].mount_path == ""
    error = _refused(a_spec("o", outputs=(_model(), OutputTarget("model", "other"))))
    assert error.field == "run.outputs"
    assert "only one output may use SHIPYARD_OUTPUT" in error.problem


@pytest.mark.parametrize(
    ("kind", "allowed", "refused", "message"),
    [
        (RunKind.TRAINING, ("model",), ("dataset", "featureset"), "must be model here"),
        (RunKind.PREPROCESSING, ("dataset", "featureset"), ("model",), "must be dataset or featureset here"),
        (RunKind.EVALUATION, ("dataset",), ("model", "featureset"), "must be dataset here"),
    ],
)
def test_output_kinds_depend_on_the_run_kind(
    kind: RunKind, allowed: tuple[str, ...], refused: tuple[str, ...], message: str
) -> None:
    for repo_kind in allowed:
        spec = a_spec("k", kind=kind, outputs=(OutputTarget(repo_kind, "out"),))
        assert spec.checked() is spec
    for repo_kind in refused:
        error = _refused(a_spec("k", kind=kind, outputs=(OutputTarget(repo_kind, "out"),)))
        assert error.field == "run.outputs[0].repo_kind"
        assert error.problem == f"{message} (got {repo_kind!r})"


def test_an_output_repo_name_is_checked() -> None:
    error = _refused(a_spec("k", outputs=(OutputTarget("model", "bad/name"),)))
    assert (error.field, error.problem) == ("run.outputs[0].repo", "must not contain '/'")


def _run(status: RunStatus = RunStatus.QUEUED) -> Run:
    return Run(id="r1", spec=a_spec("r"), owner="alice", create_time=T0, sequence=1, status=status,
               revision=3)


@pytest.mark.parametrize("status", [RunStatus.COMPLETE, RunStatus.FAILED, RunStatus.STOPPED])
def test_an_ended_run_cannot_be_stopped(status: RunStatus) -> None:
    with pytest.raises(FailedPrecondition, match=f"run 'r' has already ended \\({status.value}\\)"):
        _run(status).stopping()


@pytest.mark.parametrize("status", [RunStatus.STARTING, RunStatus.RUNNING, RunStatus.STOPPING])
def test_a_live_run_is_asked_to_stop(status: RunStatus) -> None:
    stopping = _run(status).stopping()
    assert (stopping.status, stopping.revision) == (RunStatus.STOPPING, 3)


def test_running_keeps_stopping_when_a_stop_came_while_starting() -> None:
    started = _run(RunStatus.STARTING).starting((0, 1)).stopping().running(T0, ("note",))
    assert (started.status, started.start_time, started.notes, started.gpu_ids) == (
        RunStatus.STOPPING, T0, ("note",), (0, 1))
    plain = _run(RunStatus.STARTING).running(T0)
    assert (plain.status, plain.start_time, plain.gpu_ids) == (RunStatus.RUNNING, T0, ())


def test_the_lifecycle_steps_set_status_and_reason() -> None:
    waiting = _run().waiting_for_gpus("2 GPUs asked for, 0 free")
    assert (waiting.status, waiting.status_reason) == (RunStatus.WAITING_FOR_GPUS, "2 GPUs asked for, 0 free")
    starting = waiting.starting()
    assert (starting.status, starting.status_reason) == (RunStatus.STARTING, "")
    requeued = starting.requeued("restarted")
    assert (requeued.status, requeued.status_reason) == (RunStatus.QUEUED, "restarted")


def test_ended_sets_the_outcome() -> None:
    end = T0 + timedelta(minutes=5)
    failed = _run(RunStatus.RUNNING).ended(RunStatus.FAILED, end, "the command exited with code 2", 2)
    assert (failed.status, failed.end_time, failed.status_reason, failed.exit_code) == (
        RunStatus.FAILED, end, "the command exited with code 2", 2)
    assert failed.status.final
    with pytest.raises(AssertionError):
        _run(RunStatus.RUNNING).ended(RunStatus.RUNNING, end)


def test_only_complete_failed_stopped_and_error_are_final() -> None:
    assert {s for s in RunStatus if s.final} == {RunStatus.COMPLETE, RunStatus.FAILED, RunStatus.STOPPED,
                                                 RunStatus.ERROR}


def test_the_latest_value_of_a_metric_is_mlflows_highest_step_then_latest_time() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    first = [MetricPoint("loss", 1.0, 1, at), MetricPoint("acc", 0.5, 0, at)]
    run = _run(RunStatus.RUNNING).with_points(first)
    run = run.with_points([MetricPoint("loss", 0.25, 2, at + timedelta(seconds=1))])
    assert run.metrics == {"loss": 0.25, "acc": 0.5} and run.metric_marks["loss"] == (2, 1767225601000)
    # A lower step logged later (log_model logs the run's metrics again) does not take over.
    again = run.with_points([MetricPoint("loss", 1.0, 1, at + timedelta(seconds=5))])
    assert again.metrics["loss"] == 0.25


def test_an_input_label_shows_the_pinned_version() -> None:
    assert _data().label == "digits"
    assert _data(version=4).label == "digits@4"


@pytest.mark.parametrize("priority", [-101, 101])
def test_priority_is_bounded(priority: int) -> None:
    with pytest.raises(InvalidArgument, match=r"^run\.priority: must be between -100 and 100"):
        a_spec("p", priority=priority).checked()
