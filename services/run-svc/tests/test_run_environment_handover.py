"""A run's environment reaches its command through a file descriptor, never a command line: while the
run is going, no process's command line (what ``ps`` shows every local user) holds its token, its
hyperparameters or any of its SHIPYARD_* values; the command still gets exactly its own variables,
isolated or not, and keeps no descriptor of the hand-over."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from run_fakes import wait_for
from shipyard_run.adapters.local import PASSED_ON, LocalExecutor
from shipyard_run.adapters.run_contract import LAUNCHER, contract_variables, environment_bytes, launched
from shipyard_run.app.ports import Job, JobState

from shipyard.kit.blob.local import LocalBlobStore

RUN_ID = "89abcdef0123456789abcdef01234567"
TOKEN = f"syr_{RUN_ID}.the-runs-own-secret"
SECRET_HYPERPARAMETER = "hyperparameter-secret-42"
MARKER = "shipyard-handover-probe"
# Waits for the file the test makes, then shows its environment and its descriptors.
COMMAND = (f': {MARKER}; while [ ! -e "$HOME/go" ]; do sleep 0.05; done; env -0 > "$HOME/env"; '
           'ls -l /proc/$$/fd/ > "$HOME/fds"')


def _job() -> Job:
    return Job(run_id=RUN_ID, name="handover", command=COMMAND, output_paths=("",),
               hyperparameters={"lr": SECRET_HYPERPARAMETER}, api_token=TOKEN, api_server="gateway:50051",
               api_url="http://gateway:8080")


def _command_lines(pids: list[int]) -> list[bytes]:
    """The command lines of ``pids``, as ``ps`` reads them."""
    lines = []
    for pid in pids:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes())
        except OSError:  # ended meanwhile
            continue
    return lines


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(found for child in children for found in _tree(int(child)))]


def _while_running(wrapper: int) -> list[bytes] | None:
    """The run's processes' command lines once its command is among them."""
    lines = _command_lines(_tree(wrapper))
    return lines if any(MARKER.encode() in line for line in lines) else None


async def _executor(tmp_path: Path, isolation: str | None) -> LocalExecutor:
    blobs = LocalBlobStore(tmp_path / "blobs")
    await blobs.open()
    return LocalExecutor(tmp_path / "workspaces", blobs, gpus=0, isolation=isolation)


@pytest.mark.parametrize("isolation", [None, "bubblewrap is not installed"], ids=["isolated", "shared"])
async def test_no_command_line_holds_the_runs_environment_and_the_run_gets_exactly_it(
    tmp_path: Path, isolation: str | None,
) -> None:
    executor = await _executor(tmp_path, isolation)
    job = _job()
    await executor.submit(job)
    home = executor.root / RUN_ID / "home"
    wrapper = int((executor.root / RUN_ID / "pid").read_text().split()[0])
    try:
        theirs = b"\n".join(await asyncio.to_thread(wait_for, lambda: _while_running(wrapper), 30,
                                                    "the run's command to start"))
        everyone = b"\n".join(_command_lines([int(pid) for pid in os.listdir("/proc") if pid.isdigit()]))
    finally:
        (home / "go").touch()  # the run ends whatever is found
    assert TOKEN.encode() not in everyone and SECRET_HYPERPARAMETER.encode() not in everyone
    assert b"SHIPYARD_" not in theirs and b"MLFLOW_" not in theirs

    exit_file = executor.root / RUN_ID / "exit_code"
    await asyncio.to_thread(wait_for, exit_file.exists, 30, "the run to end")
    status = await executor.status(RUN_ID)
    assert (status.state, status.exit_code) == (JobState.EXITED, 0), (exit_file.parent / "log").read_text()
    env = dict(item.split("=", 1) for item in (home / "env").read_text().split("\0") if item)
    own = "/run/shipyard" if isolation is None else str(executor.root / RUN_ID)
    expected = {*contract_variables(job, own, {}), "PATH", "HOME", "PWD",
                *(key for key in os.environ if key in PASSED_ON or key.startswith("LC_"))}
    assert set(env) == expected
    assert env["SHIPYARD_TOKEN"] == TOKEN and env["lr"] == SECRET_HYPERPARAMETER
    assert "memfd:" not in (home / "fds").read_text()  # the hand-over's descriptor was closed


def test_the_launchers_command_line_names_a_descriptor_never_a_value() -> None:
    argv = launched(sys.executable, 7, ["/bin/sh", "-c", "train"])
    assert argv == [sys.executable, "-I", "-S", "-c", LAUNCHER, "7", "/bin/sh", "-c", "train"]


def test_the_launcher_starts_its_command_with_exactly_the_environment_handed_over(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.write(write, environment_bytes({"A": "1=2", "B": "with space\nand line", "EMPTY": ""}))
    os.close(write)
    done = subprocess.run(launched(sys.executable, read, ["/usr/bin/env", "-0"]), pass_fds=(read,),
                          env={"LEAK": "x"}, capture_output=True, check=True)
    os.close(read)
    assert done.stdout.split(b"\0")[:-1] == [b"A=1=2", b"B=with space\nand line", b"EMPTY="]


@pytest.mark.parametrize("key", ["", "A=B", "A\0B"])
def test_a_variable_no_environment_can_hold_is_refused_by_name(key: str) -> None:
    with pytest.raises(ValueError, match="cannot be put in an environment"):
        environment_bytes({key: "1"})
