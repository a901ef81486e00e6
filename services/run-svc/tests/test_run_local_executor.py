"""The local executor with this machine's bubblewrap: what a run sees, who it is, what it can
change — and, without isolation, inputs that are copies."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from pathlib import Path

import pytest
from shipyard_run.adapters.local import LocalExecutor
from shipyard_run.adapters.sandbox import interpreter
from shipyard_run.app.ports import Job, JobInput, JobState

from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.blob.tree import BlobTree
from shipyard.kit.bubblewrap import Bubblewrap, system_view
from shipyard.kit.manifest import Manifest

RUN_ID = "0123456789abcdef0123456789abcdef"
ROWS = b"1,2\n3,4\n"


async def _world(tmp_path: Path, isolation: str | None = None) -> tuple[LocalExecutor, Manifest, Path]:
    """An executor over a blob store holding a one-file dataset; its manifest; the data directory."""
    blobs = LocalBlobStore(tmp_path / "blobs")
    await blobs.open()
    (tmp_path / "digits").mkdir()
    (tmp_path / "digits" / "train.csv").write_bytes(ROWS)
    (tmp_path / "admin-token").write_text("the operator's token")
    manifest = await BlobTree(blobs).store_tree(tmp_path / "digits")
    return LocalExecutor(tmp_path / "workspaces", blobs, gpus=0, isolation=isolation), manifest, tmp_path


async def _run(executor: LocalExecutor, command: str, manifest: Manifest, api_token: str = "",
               api_server: str = "", api_url: str = "") -> tuple[int, str, tuple[str, ...]]:
    """Run ``command`` with the dataset at /mnt/data and an output at /model; exit code, log, notes."""
    job = Job(run_id=RUN_ID, name="probe", command=command, inputs=(JobInput("/mnt/data", manifest.digest),),
              output_paths=("", "/model"), hyperparameters={"lr": "0.1"}, api_token=api_token,
              api_server=api_server, api_url=api_url)
    notes = await executor.submit(job)
    for _ in range(400):
        status = await executor.status(RUN_ID)
        if status.state is JobState.EXITED:
            log = (executor.root / RUN_ID / "log").read_text()
            return status.exit_code, log, notes
        await asyncio.sleep(0.025)
    raise TimeoutError(f"{command!r} did not end")


def _blob_intact(data_dir: Path, manifest: Manifest) -> bool:
    blob = data_dir / "blobs"
    paths = [p for p in blob.rglob("*") if p.is_file() and p.read_bytes() == ROWS]
    return bool(paths) and all(hashlib.sha256(p.read_bytes()).hexdigest() == manifest.entries[0].sha256
                               for p in paths)


async def test_a_run_sees_only_the_system_its_python_and_its_own_files(tmp_path: Path) -> None:
    executor, manifest, data_dir = await _world(tmp_path)
    _, log, notes = await _run(executor, f"ls /; echo --; ls /run/shipyard; echo --; "
                                            f"cat {data_dir}/admin-token 2>&1", manifest)
    top, own, secret = (part.split() for part in log.split("--\n"))
    system = {target.strip("/") for target in system_view()[2::3]}  # --ro-bind/--symlink SRC DEST
    python = {directory.split("/")[1] for directory in interpreter()}
    assert set(top) == system | python | {"dev", "proc", "tmp", "run", "mnt", "model"}
    assert set(own) == {"code", "config", "home", "hyperparameters.json", "metrics.jsonl", "output",
                        "tensorboard"}
    assert "No such file" in " ".join(secret) and "the operator's token" not in log
    assert "isolated (bubblewrap" in notes[0]


async def test_a_run_is_an_unprivileged_user_that_sees_no_other_process(tmp_path: Path) -> None:
    executor, manifest, _ = await _world(tmp_path)
    code, log, _ = await _run(executor, "id -u; ls /proc | grep -c '^[0-9]'; grep CapEff /proc/self/status",
                              manifest)
    uid, processes, caps = log.split("\n")[:3]
    assert code == 0 and uid == ("65534" if os.geteuid() == 0 else str(os.geteuid()))
    assert int(processes) <= 4  # bwrap's init, sh, ls, grep: nothing of the host
    assert caps.split() == ["CapEff:", "0000000000000000"]


async def test_an_input_can_never_be_written_and_its_blob_keeps_its_bytes(tmp_path: Path) -> None:
    executor, manifest, data_dir = await _world(tmp_path)
    _, log, _ = await _run(executor, "chmod u+w /mnt/data/train.csv; echo evil >> /mnt/data/train.csv; "
                                     "echo evil > /model/m.txt && cat /mnt/data/train.csv", manifest)
    if os.geteuid() == 0:  # the input is a hard link to the store's blob: the run's user may not write it
        assert "Permission denied" in log and log.endswith(ROWS.decode())
    assert _blob_intact(data_dir, manifest)
    staged = await executor.stage_outputs(RUN_ID)
    assert set(staged) == {"", "/model"}


async def test_a_run_gets_its_own_environment_and_none_of_run_svcs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_SECRET_KEY", "fernet-key")
    monkeypatch.setenv("NATS_PASSWORD", "bus-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3-secret")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    executor, manifest, _ = await _world(tmp_path)
    code, log, _ = await _run(executor, "env", manifest)
    env = dict(line.split("=", 1) for line in log.splitlines())
    assert code == 0 and "secret" not in log and "fernet" not in log
    assert env["lr"] == "0.1" and env["LC_ALL"] == "C.UTF-8" and env["HOME"] == "/run/shipyard/home"
    assert env["SHIPYARD_OUTPUT"] == "/run/shipyard/output" and env["SHIPYARD_MOUNT_MNT_DATA"] == "/mnt/data"
    assert "SHIPYARD_SECRET_KEY" not in env and "NATS_PASSWORD" not in env


async def test_a_run_gets_its_own_api_token_and_server_never_run_svcs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHIPYARD_TOKEN", "sy_operator.secret")
    monkeypatch.setenv("SHIPYARD_SERVER", "internal:1")
    executor, manifest, _ = await _world(tmp_path)
    code, log, _ = await _run(executor, "env", manifest, f"syr_{RUN_ID}.s3cret", "gateway:50051",
                              "http://gateway:8080")
    env = dict(line.split("=", 1) for line in log.splitlines())
    assert code == 0 and "sy_operator" not in log
    assert (env["SHIPYARD_TOKEN"], env["SHIPYARD_SERVER"], env["SHIPYARD_API_URL"]) == (
        f"syr_{RUN_ID}.s3cret", "gateway:50051", "http://gateway:8080")


async def test_without_isolation_inputs_are_copies_so_the_store_keeps_its_bytes(tmp_path: Path) -> None:
    executor, manifest, data_dir = await _world(tmp_path, isolation="bubblewrap is not installed")
    assert executor.isolation_missing() == "bubblewrap is not installed"
    code, _, notes = await _run(executor, 'chmod u+w "$SHIPYARD_MOUNT_MNT_DATA/train.csv"; '
                                          'echo evil >> "$SHIPYARD_MOUNT_MNT_DATA/train.csv"', manifest)
    assert code == 0 and _blob_intact(data_dir, manifest)
    assert notes[0].startswith("not isolated: bubblewrap is not installed")


async def test_workspaces_inside_the_python_runs_use_are_no_isolation(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path / "blobs")
    executor = LocalExecutor(Path(sys.prefix) / "shipyard-data" / "run-svc" / "workspaces", blobs, gpus=0,
                             isolation=Bubblewrap("/usr/bin/bwrap", None))
    assert "holds the run workspaces" in executor.isolation_missing()


async def test_a_run_reads_and_writes_its_own_files_under_run_svcs_private_umask(tmp_path: Path) -> None:
    executor, manifest, _ = await _world(tmp_path)
    before = os.umask(0o077)  # what `shipyard up` sets: the data directory is the platform's alone
    try:
        command = 'cat /mnt/data/train.csv "$SHIPYARD_HYPERPARAMS" && echo w > /model/o && pwd'
        code, log, _ = await _run(executor, command, manifest)
    finally:
        os.umask(before)
    assert code == 0 and log.startswith(ROWS.decode()) and log.endswith("/run/shipyard/code\n"), log


async def test_metrics_come_from_stdout_alone_while_the_log_keeps_both_streams(tmp_path: Path) -> None:
    executor, manifest, _ = await _world(tmp_path, isolation="bubblewrap is not installed")
    # What scikit-learn's ConvergenceWarning printed on stderr: no metric of it.
    code, log, _ = await _run(executor, "echo loss=0.25; echo 'status=1 max_iter=5' >&2; exit 3", manifest)
    points = await executor.new_metrics(RUN_ID)
    assert code == 3 and [(point.name, point.value) for point in points] == [("loss", 0.25)]
    assert "loss=0.25" in log and "status=1 max_iter=5" in log


async def test_the_pid_file_appears_whole_so_a_stop_at_launch_never_reads_half_of_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stop racing the launch once read an empty pid file (IndexError). The file must never be written
    # in place: only moved there whole.
    write_text = Path.write_text

    def in_place_refused(path: Path, *args: object, **kwargs: object) -> int:
        assert path.name != "pid", "the pid file was written in place"
        return write_text(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", in_place_refused)
    executor, manifest, _ = await _world(tmp_path, isolation="")
    code, _, _ = await _run(executor, "true", manifest)
    assert code == 0
    assert (executor.root / RUN_ID / "pid").read_text().split()[0].isdigit()
