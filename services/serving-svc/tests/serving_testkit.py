"""Shared helpers of the model server tests: a tiny trained model, custom predictors on disk, and a
model server process started with deadlines."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]  # a setosa (0) and a virginica (2)
IRIS_CLASSES = [0, 2]


def train_iris(directory: Path, filename: str = "model.joblib") -> Path:
    """A LogisticRegression fitted on iris, saved with joblib as ``directory/filename``."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    joblib.dump(LogisticRegression(max_iter=1000).fit(features, labels), path)
    return path


def write_module(directory: Path, name: str, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def iris_request(rows: list[list[float]] | None = None, **extra: Any) -> dict[str, Any]:
    data = rows if rows is not None else IRIS_ROWS
    return {
        "inputs": [{"name": "input-0", "shape": [len(data), 4], "datatype": "FP64", "data": data}],
        **extra,
    }


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    started: dict[str, Any]

    @property
    def port(self) -> int:
        return int(self.started["port"])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout)
        finally:
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()


def model_server_command(model_dir: Path, *args: str, name: str = "iris") -> list[str]:
    return [
        sys.executable,
        "-m",
        "shipyard_serving.model_server",
        "--model-dir",
        str(model_dir),
        "--model-name",
        name,
        "--port",
        "0",
        *args,
    ]


def start_model_server(
    model_dir: Path, *args: str, name: str = "iris", timeout: float = 60.0
) -> ServerProcess:
    """Start the process on a free port; return once it printed its start line (it is then ready)."""
    process = subprocess.Popen(
        model_server_command(model_dir, *args, name=name),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None and process.stderr is not None
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            process.kill()
            raise AssertionError(f"the model server printed no start line within {timeout}s")
        readable, _, _ = select.select([process.stdout], [], [], min(remaining, 0.5))
        if readable:
            line = process.stdout.readline()
            if line:
                return ServerProcess(process, json.loads(line))
        if process.poll() is not None:
            raise AssertionError(
                f"the model server exited {process.returncode}: {process.stderr.read().decode()}"
            )
