"""TensorBoards of runs on this machine: one ``tensorboard`` process per run, serving the run's
SHIPYARD_TB_LOGDIR under the path the gateway proxies (``/tensorboard/<run>/``).

Its pid and port are kept beside the logs in the run's workspace, so a run-svc that restarted
finds the TensorBoards the previous one started.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from shipyard.kit.errors import FailedPrecondition


def installed() -> bool:
    """Whether the tensorboard package is importable here."""
    return importlib.util.find_spec("tensorboard") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalTensorBoards:
    """Starts, finds and stops TensorBoard processes for runs' workspaces."""

    def __init__(self, workspaces: Path) -> None:
        self._workspaces = workspaces
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def _files(self, run_id: str) -> tuple[Path, Path]:
        ws = self._workspaces / run_id
        return ws / "tensorboard", ws / "tensorboard.pid"

    async def start(self, run_id: str, run_name: str) -> str:
        """The address of the run's TensorBoard, started now unless it runs already."""
        if (address := await self.address(run_id)) is not None:
            return address
        if not installed():
            raise FailedPrecondition("TensorBoard is not installed on the platform (pip install tensorboard)")
        return await asyncio.to_thread(self._start, run_id, run_name)

    def _start(self, run_id: str, run_name: str) -> str:
        logdir, pid_file = self._files(run_id)
        logdir.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        with (logdir.parent / "tensorboard.log").open("ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
                 "--port", str(port), "--path_prefix", f"/tensorboard/{run_name}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._children[run_id] = child
        pid_file.write_text(f"{child.pid} {port}")
        return f"127.0.0.1:{port}"

    async def address(self, run_id: str) -> str | None:
        """Where the run's TensorBoard listens, while its process lives."""
        return await asyncio.to_thread(self._address, run_id)

    def _address(self, run_id: str) -> str | None:
        _, pid_file = self._files(run_id)
        child = self._children.get(run_id)
        if child is not None and child.poll() is not None:
            self._children.pop(run_id)
        try:
            pid, port = pid_file.read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return None
        return f"127.0.0.1:{port}"

    async def stop(self, run_id: str) -> None:
        """Stop the run's TensorBoard, if it runs."""
        await asyncio.to_thread(self._stop, run_id)

    def _stop(self, run_id: str) -> None:
        _, pid_file = self._files(run_id)
        try:
            pid = int(pid_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        child = self._children.pop(run_id, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)
        pid_file.unlink(missing_ok=True)
