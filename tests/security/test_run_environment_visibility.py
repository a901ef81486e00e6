"""Attack: a local Unix user of the host (not a run: runs have their own PID namespaces) reads every
process's command line, as ``ps`` does, while a data scientist's run is going, to take the run's token
and hyperparameters. The run's environment never is on a command line (it reaches the run through a
file descriptor; /proc/<pid>/cmdline is world-readable, /proc/<pid>/environ only its own user's), and
the run still gets exactly its own variables."""

from __future__ import annotations

import subprocess
from pathlib import Path

from shipyard.client.connection import Client
from shipyard.contracts.gateway.v1 import gateway_pb2
from shipyard.contracts.run.v1 import runs_pb2 as pb
from shipyard.local.harness import Stack, wait_for

ENDED = (pb.RUN_STATUS_COMPLETE, pb.RUN_STATUS_FAILED, pb.RUN_STATUS_STOPPED, pb.RUN_STATUS_ERROR)
HYPERPARAMETER = ("learning_secret", "hp-only-the-run-knows-5e1f")
MARKER = "shipyard-visibility-probe"
# Waits for the file the test makes (in its home), then prints its environment.
COMMAND = f': {MARKER}; while [ ! -e "$HOME/go" ]; do sleep 0.05; done; env'
# Every process's command line, read as nobody: what ``ps`` shows any local user.
AS_NOBODY = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "/bin/sh", "-c",
             'for f in /proc/[0-9]*/cmdline; do cat "$f" 2>/dev/null; echo; done']
# The run's variables besides its hyperparameters, MLflow's and the locale (run_contract, local executor).
CONTRACT = {"SHIPYARD_RUN_ID", "SHIPYARD_RUN_NAME", "SHIPYARD_OUTPUT", "SHIPYARD_HYPERPARAMS",
            "SHIPYARD_TB_LOGDIR", "SHIPYARD_METRICS_FILE", "SHIPYARD_MOUNTS", "SHIPYARD_TOKEN",
            "SHIPYARD_SERVER", "SHIPYARD_API_URL", "CUDA_VISIBLE_DEVICES", "PYTHONUNBUFFERED", "PATH", "HOME",
            "PWD", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID",
            "MLFLOW_DISABLE_TELEMETRY"}
MAYBE = {"VIRTUAL_ENV", "LANG", "LANGUAGE", "TZ"}  # its environment's, and the locale run-svc passes on


def _as_nobody_sees() -> str:
    done = subprocess.run(AS_NOBODY, capture_output=True, check=True, timeout=60)
    return done.stdout.decode(errors="replace")


def _workspace(stack: Stack, run_id: str) -> Path:
    return stack.data_dir.resolve() / "run-svc" / "workspaces" / run_id


def test_no_local_user_reads_a_runs_token_or_hyperparameters_and_the_run_gets_exactly_its_own(
    stack: Stack, admin: Client,
) -> None:
    made = admin.call(admin.identity.CreateUser, gateway_pb2.CreateUserRequest(
        user=gateway_pb2.User(name="vera", roles=[gateway_pb2.ROLE_DATA_SCIENTIST])))
    vera = stack.client(made.token)
    name = "visibility-probe"
    run = vera.call(vera.runs.SubmitRun, pb.SubmitRunRequest(run=pb.Run(
        name=name, command=COMMAND, hyperparameters=dict([HYPERPARAMETER]))))
    home = _workspace(stack, run.id) / "home"
    try:
        seen = wait_for(lambda: (found if MARKER in (found := _as_nobody_sees()) else None), 120,
                        "the run's command to be going")
    finally:
        wait_for(home.is_dir, 120, "the run's home")
        (home / "go").touch()  # the run ends whatever is found

    def ended() -> pb.Run | None:
        got = vera.call(vera.runs.GetRun, pb.GetRunRequest(name=name))
        return got if got.status in ENDED else None

    done = wait_for(ended, 60, "the run to end")
    log = vera.call(vera.runs.ReadRunLogs, pb.ReadRunLogsRequest(name=name, max_bytes=1 << 20)).data.decode()
    assert done.status == pb.RUN_STATUS_COMPLETE, log
    env = dict(line.split("=", 1) for line in log.splitlines() if "=" in line)
    # Exactly its own variables: none of run-svc's.
    locale = {key for key in env if key.startswith("LC_")}
    assert CONTRACT | {HYPERPARAMETER[0]} <= set(env)
    assert set(env) - CONTRACT - {HYPERPARAMETER[0]} - MAYBE - locale == set()
    assert env[HYPERPARAMETER[0]] == HYPERPARAMETER[1] and env["SHIPYARD_TOKEN"].startswith("syr_")
    # Nothing of it on any command line a local user reads.
    assert env["SHIPYARD_TOKEN"] not in seen and env["MLFLOW_TRACKING_TOKEN"] not in seen
    assert HYPERPARAMETER[1] not in seen
    for key in ("SHIPYARD_RUN_ID", "SHIPYARD_RUN_NAME", "MLFLOW_RUN_ID"):
        assert f"{key}={env[key]}" not in seen
