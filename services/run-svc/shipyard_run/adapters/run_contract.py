"""What every executor gives a run (the README's run contract): its variables, the wrapper that
records its exit code, and how its metrics are read from stdout and the SDK's file. The local and the
cluster executors share it, so a run sees the same contract wherever it executes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from shipyard.kit.errors import FailedPrecondition
from shipyard_run.app.ports import Executor, Job
from shipyard_run.domain.clusters import Cluster
from shipyard_run.domain.runs import MetricPoint
from shipyard_run.domain.tracking import DEFAULT_EXPERIMENT

# Katib's StdOut metrics collector format: name=value pairs anywhere on a line.
METRIC = re.compile(r"([A-Za-z_][\w.-]*)\s*=\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.])")
# $1: the exit code file, $2: the log, $3: the stdout file; the rest: the command to run (LAUNCHER … sh -c …,
# or bwrap … LAUNCHER … sh -c …). Its stderr goes to the log, its stdout through tee to the log and the
# stdout file; fd 4 brings the command's code out of the pipeline (sh has no pipefail). tee ignores
# SIGINT/SIGTERM so that a run stopping gracefully can still print. The wrapper exits with the
# command's code, so a run-svc that still holds it knows the code even when the file could not be
# written (a full disk); a half-written file is removed.
WRAPPER = ('exit_file=$1; log=$2; out=$3; shift 3; '
           'code=$({ { "$@" 2>>"$log" 4>&-; echo $? >&4; } | '
           '(trap "" INT TERM; exec tee -a "$log" >>"$out") 4>&-; } 4>&1); '
           '{ printf "%s" "$code" > "$exit_file.tmp" && mv "$exit_file.tmp" "$exit_file"; } 2>/dev/null '
           '|| rm -f "$exit_file.tmp"; exit "$code"')


# Starts the run's command ($2…) with exactly the environment read from the file descriptor $1 (NUL-separated
# KEY=VALUE), which it closes first. The environment crosses into the run over a descriptor rather than a
# command line: every local user can read a process's command line (/proc/<pid>/cmdline, ``ps``), only its
# own user its environment. It runs as the run's user, inside the sandbox, after the switch of user (so
# that no variable of the run's, LD_PRELOAD say, reaches the wrapper, bwrap or setpriv), in any Python 3
# the run can see: isolated (-I) and without site (-S), so that nothing of the run's affects it.
LAUNCHER = ("import os, sys\n"
            "fd = int(sys.argv[1])\n"
            "chunks = []\n"
            "while True:\n"
            "    chunk = os.read(fd, 65536)\n"
            "    if not chunk:\n"
            "        break\n"
            "    chunks.append(chunk)\n"
            "os.close(fd)\n"
            "env = dict(item.split(b'=', 1) for item in b''.join(chunks).split(b'\\0') if item)\n"
            "os.execve(sys.argv[2], sys.argv[2:], env)\n")


def launched(python: str, fd: int, argv: list[str]) -> list[str]:
    """``argv`` started by ``python`` with exactly the environment it reads from ``fd`` (see ``LAUNCHER``;
    ``environment_bytes`` writes it): the command line names the descriptor, never a value."""
    return [python, "-I", "-S", "-c", LAUNCHER, str(fd), *argv]


def environment_bytes(env: dict[str, str]) -> bytes:
    """``env`` as ``LAUNCHER`` reads it; ValueError naming a variable an environment cannot hold."""
    for key, value in env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ValueError(f"the run's variable {key!r} cannot be put in an environment "
                             "(a name must be non-empty and hold no '=' nor NUL, a value no NUL)")
    return b"".join(f"{key}={value}".encode() + b"\0" for key, value in env.items())


def mount_variable(mount_path: str) -> str:
    """The variable that names where a mount path's content is: /mnt/data → SHIPYARD_MOUNT_MNT_DATA."""
    return "SHIPYARD_MOUNT_" + re.sub(r"[^A-Za-z0-9]+", "_", mount_path).strip("_").upper()


def contract_variables(job: Job, own: str, mounts: dict[str, str]) -> dict[str, str]:
    """The run's own variables: its hyperparameters, SHIPYARD_*, its token and MLflow's; ``own``: where
    it finds its workspace files, ``mounts``: mount path → where it finds the mount. (PATH, HOME and
    the locale are the executor's to set.)"""
    env = dict(job.hyperparameters)
    outputs = [mounts[p] for p in job.output_paths if p]
    env.update({
        "SHIPYARD_RUN_ID": job.run_id,
        "SHIPYARD_RUN_NAME": job.name,
        "SHIPYARD_OUTPUT": f"{own}/output" if "" in job.output_paths or not outputs else outputs[0],
        "SHIPYARD_HYPERPARAMS": f"{own}/hyperparameters.json",
        "SHIPYARD_TB_LOGDIR": f"{own}/tensorboard",
        "SHIPYARD_METRICS_FILE": f"{own}/metrics.jsonl",
        "SHIPYARD_MOUNTS": json.dumps(mounts, sort_keys=True),
        "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in job.gpus),
        "PYTHONUNBUFFERED": "1",
    })
    if job.distribution.distributed:  # the run's code spreads itself (srun, torchrun, …)
        env["SHIPYARD_DISTRIBUTION"] = job.distribution.value
        env["SHIPYARD_WORKERS"] = str(job.workers)
    env.update({mount_variable(path): where for path, where in mounts.items()})
    if job.config_file_name:
        env["SHIPYARD_CONFIG"] = f"{own}/config/{job.config_file_name}"
    # The run calls the API as its owner with a token of its own (the CLI and SDK read these).
    if job.api_token:
        env["SHIPYARD_TOKEN"] = job.api_token
    if job.api_server:
        env["SHIPYARD_SERVER"] = job.api_server
    if job.api_url:
        env["SHIPYARD_API_URL"] = job.api_url
    env.update(mlflow_variables(job))
    return env


def mlflow_variables(job: Job) -> dict[str, str]:
    """What makes unmodified MLflow code log into this run: the gateway's MLflow API, the run's own
    token (MLflow sends it as a bearer token; it dies with the run), the run and its experiment."""
    if not (job.api_url and job.api_token):
        return {}
    # Telemetry off: MLflow's client would call its vendor's servers from every run.
    return {"MLFLOW_TRACKING_URI": f"{job.api_url.rstrip('/')}/mlflow",
            "MLFLOW_TRACKING_TOKEN": job.api_token, "MLFLOW_RUN_ID": job.run_id,
            "MLFLOW_EXPERIMENT_ID": job.project or DEFAULT_EXPERIMENT,
            "MLFLOW_DISABLE_TELEMETRY": "true"}


@dataclass
class MetricCursor:
    """How far the metric readers got in a run's stdout (``log``: the name it had when the metrics
    were read from the log) and metrics file, and each metric's last step."""

    log: int = 0
    sdk: int = 0
    steps: dict[str, int] | None = None


def complete_lines(data: bytes) -> bytes:
    """``data`` up to and including its last newline (a line still being written waits)."""
    return data[: data.rfind(b"\n") + 1]


def read_points(cursor: MetricCursor, stdout: bytes, sdk: bytes, now: datetime) -> list[MetricPoint]:
    """The metric points in the new ``stdout`` and SDK-file bytes read at the cursor, which moves past
    the complete lines of each."""
    steps = cursor.steps or {}
    points: list[MetricPoint] = []
    complete = complete_lines(stdout)
    cursor.log += len(complete)
    for line in complete.decode(errors="replace").splitlines():
        for name, value in METRIC.findall(line):
            steps[name] = steps.get(name, 0) + 1
            points.append(MetricPoint(name, float(value), steps[name], now))
    sdk_complete = complete_lines(sdk)
    cursor.sdk += len(sdk_complete)
    for line in sdk_complete.decode(errors="replace").splitlines():
        point = _sdk_point(line, steps, now)
        if point is not None:
            points.append(point)
    cursor.steps = steps
    return points


def _sdk_point(line: str, steps: dict[str, int], now: datetime) -> MetricPoint | None:
    try:
        record = json.loads(line)
        name, value = str(record["name"]), float(record["value"])
    except (ValueError, KeyError, TypeError):
        return None
    steps[name] = int(record.get("step") or steps.get(name, 0) + 1)
    return MetricPoint(name, value, steps[name], now)


def read_at(path: Path, offset: int, max_bytes: int) -> bytes:
    """Up to ``max_bytes`` of the file from ``offset`` (empty when there is no such file)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(max_bytes)
    except FileNotFoundError:
        return b""


def load_cursor(path: Path) -> MetricCursor:
    """The cursor kept in ``path`` (a fresh one when there is none, or it cannot be read)."""
    try:
        return MetricCursor(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return MetricCursor()


def save_cursor(path: Path, cursor: MetricCursor) -> None:
    """Keep the cursor in ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cursor.__dict__))


class WithoutTensorBoard(Executor):
    """An executor of a cluster: TensorBoard is served for local runs only."""

    cluster: Cluster

    async def start_tensorboard(self, run_id: str, run_name: str) -> str:
        raise FailedPrecondition(f"TensorBoard is served for local runs only; run {run_name!r} ran on "
                                 f"cluster {self.cluster.name!r}")

    async def tensorboard_address(self, run_id: str) -> str | None:
        return None

    async def stop_tensorboard(self, run_id: str) -> None:
        return None
