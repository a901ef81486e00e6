"""What a study's File and TensorFlowEvent collectors read: a trial's files on the local executor (never
through a symbolic link), and the scalars of TensorFlow event files (tensorboard's protos, Katib's rule
for which tag counts for which metric)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from shipyard_run.adapters.local import files_at
from shipyard_run.adapters.tf_events import TensorFlowEvents, considered, records
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util


def _write_events(folder: Path, *values: summary_pb2.Summary.Value) -> Path:
    writer = EventFileWriter(str(folder))
    for step, value in enumerate(values, 1):
        summary = summary_pb2.Summary(value=[value])
        writer.add_event(event_pb2.Event(step=step, wall_time=time.time(), summary=summary))
    writer.close()
    (written,) = folder.glob("events.out.tfevents.*")
    return written


def _simple(tag: str, value: float) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(tag=tag, simple_value=value)


def _tensor(tag: str, value: float) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(np.float32(value)))


def test_a_file_and_a_directorys_tree_are_read_by_their_paths(tmp_path: Path) -> None:
    code = tmp_path / "code"
    (code / "var/log/katib").mkdir(parents=True)
    (code / "var/log/katib/metrics.log").write_text("accuracy=0.9\n")
    (code / "logs/train").mkdir(parents=True)
    (code / "logs/train/events.1").write_bytes(b"one")
    (code / "logs/eval.2").write_bytes(b"two")
    found = files_at(code, "/var/log/katib/metrics.log", 1 << 20)
    assert found == {"/var/log/katib/metrics.log": b"accuracy=0.9\n"}
    assert files_at(code, "logs", 1 << 20) == {"/logs/train/events.1": b"one", "/logs/eval.2": b"two"}
    assert files_at(code, "/missing.log", 1 << 20) == {}


def test_the_newest_files_are_read_first_up_to_the_limit(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"o" * 10)
    (tmp_path / "new").write_bytes(b"n" * 10)
    os.utime(tmp_path / "old", (1, 1))
    assert files_at(tmp_path, "/", 15) == {"/new": b"n" * 10, "/old": b"o" * 5}


def test_nothing_is_read_through_a_symbolic_link_or_above_the_working_directory(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("token=1234\n")
    code = tmp_path / "code"
    (code / "logs").mkdir(parents=True)
    (code / "metrics.log").symlink_to(secret)
    (code / "logs/linked").symlink_to(secret)
    (code / "outside").symlink_to(tmp_path)
    assert files_at(code, "metrics.log", 1 << 20) == {}
    assert files_at(code, "logs", 1 << 20) == {}
    assert files_at(code, "outside/secret", 1 << 20) == {}
    assert files_at(code, "../secret", 1 << 20) == {}


def test_scalars_of_event_files_are_read_for_the_watched_metrics(tmp_path: Path) -> None:
    train = tmp_path / "logs" / "train"
    train.mkdir(parents=True)
    written = _write_events(train, _simple("accuracy", 0.5), _tensor("accuracy", 0.75), _simple("loss", 0.3),
                            _simple("other", 1.0))
    files = {"/logs/train/" + written.name: written.read_bytes()}
    found = TensorFlowEvents().observations(files, ["accuracy", "loss"])
    assert [(name, round(value, 6)) for name, value in found] == [("accuracy", 0.5), ("accuracy", 0.75),
                                                                  ("loss", 0.3)]
    assert TensorFlowEvents().missing() == ""


def test_katibs_rule_for_a_metric_with_a_folder_and_a_record_cut_short(tmp_path: Path) -> None:
    assert considered("accuracy", "train/accuracy", "/logs/train/events.1")
    assert not considered("accuracy", "train/accuracy", "/logs/eval/events.1")
    assert considered("accuracy_top1", "accuracy", "/anywhere/events.1")
    written = _write_events(tmp_path, _simple("accuracy", 0.5), _simple("accuracy", 0.6))
    data = written.read_bytes()
    assert len(list(records(data))) == 3  # the file version record, then two events
    assert len(list(records(data[:-3]))) == 2  # the last one still being written is left out
