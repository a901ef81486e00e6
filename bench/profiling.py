"""Optional sampling profiles of the stack's services while a phase runs (``--profile``).

Uses py-spy (``pip install py-spy`` into the virtual environment) at 100 Hz with
``--nonblocking``, so the profiled processes are not paused; the profiler itself still
takes some CPU, so figures of a profiled run are a little lower than those of a plain run.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path


def available() -> str | None:
    """The py-spy executable, if installed."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiles:
    """py-spy recorders attached to some pids for the length of a ``with`` block."""

    def __init__(self, out: Path, phase: str, pids: dict[str, int], fmt: str = "flamegraph") -> None:
        self._out = out
        self._phase = phase
        self._pids = pids
        self._fmt = fmt
        self._recorders: list[subprocess.Popen[bytes]] = []
        self.files: list[Path] = []

    def __enter__(self) -> Profiles:
        spy = available()
        if spy is None:
            raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
        self._out.mkdir(parents=True, exist_ok=True)
        suffix = {"flamegraph": "svg", "speedscope": "json", "raw": "txt"}[self._fmt]
        for name, pid in self._pids.items():
            path = self._out / f"{self._phase}-{name}.{suffix}"
            self.files.append(path)
            self._recorders.append(
                subprocess.Popen(
                    [
                        spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--rate",
                        "100",
                        "--nonblocking",
                        "--format",
                        self._fmt,
                        "--output",
                        str(path),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for recorder in self._recorders:
            if recorder.poll() is None:
                recorder.send_signal(signal.SIGINT)
        for recorder in self._recorders:
            try:
                recorder.wait(30)
            except subprocess.TimeoutExpired:
                recorder.kill()
