"""The model server process in tests: started on a free port, its start line awaited with a deadline."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
        "shipyard_model_server",
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
