"""The reference of ``python -m bench.serving``: MLServer (``mlserver`` + ``mlserver-sklearn``) serving
the same joblib file over its V2 REST endpoint.

MLServer is not a dependency of the project: the benchmark installs it, once, into its own virtual
environment ``.venv-mlserver`` at the repository root (ignored by git: the venv's own ``.gitignore``),
with the project's scikit-learn version pinned so that both servers unpickle the same model with the
same library, and ``uvloop<0.22`` (MLServer 1.7.1's inference workers crash with uvloop 0.23). It runs
as ``mlserver start DIR`` with a ``settings.json`` on free ports; only requests are timed, never the
install or the start.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.procs import REPO_ROOT, free_port

MLSERVER_VENV = REPO_ROOT / ".venv-mlserver"
INSTALL_TIMEOUT_S = 900
IMPLEMENTATION = "mlserver_sklearn.SKLearnModel"


@dataclass(frozen=True)
class Variant:
    """One MLServer configuration measured: a key, what the table calls it, its ``settings.json``."""

    key: str
    title: str
    settings: dict[str, Any] = field(default_factory=dict)


_QUIET = {"debug": False, "metrics_endpoint": None}  # no access log per request, no Prometheus middleware
VARIANTS = (
    Variant("M", "defaults (parallel_workers 1, debug on)"),
    Variant("M0", "parallel_workers 0", {"parallel_workers": 0}),
    Variant("M0q", "parallel_workers 0, no debug/metrics", {"parallel_workers": 0, **_QUIET}),
    Variant("M2q", "parallel_workers 2, no debug/metrics", {"parallel_workers": 2, **_QUIET}),
)
DEFAULT_VARIANTS = ("M", "M0", "M0q")  # M2q was slower here (the main process is the bottleneck)


def _python() -> Path:
    return MLSERVER_VENV / "bin" / "python"


def _env() -> dict[str, str]:
    """MLServer's environment: ours, minus our venv and any MLSERVER_* setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSERVER")}
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


_PROBE = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({p: m.version(p) for p in ('mlserver', 'mlserver-sklearn', 'scikit-learn', 'uvloop')}))"
)


def installed() -> dict[str, str] | None:
    """The versions in .venv-mlserver (mlserver, mlserver-sklearn, scikit-learn, uvloop), or None."""
    if not _python().exists():
        return None
    try:
        done = subprocess.run([str(_python()), "-c", _PROBE], capture_output=True, text=True, timeout=120,
                              env=_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    versions: dict[str, str] = json.loads(done.stdout)
    return versions


def _usable(versions: dict[str, str] | None, sklearn: str) -> bool:
    if versions is None:
        return False
    uvloop = tuple(int(part) for part in versions["uvloop"].split(".")[:2] if part.isdigit())
    return versions["scikit-learn"] == sklearn and uvloop < (0, 22)


def ensure_mlserver(say: Callable[[str], None]) -> tuple[dict[str, str] | None, str]:
    """MLServer's versions once installed (installing into .venv-mlserver when missing or unfit); else
    None and why."""
    sklearn = metadata.version("scikit-learn")
    versions = installed()
    if _usable(versions, sklearn):
        return versions, ""
    say(f"installing MLServer into {MLSERVER_VENV} (not a project dependency; once, a few minutes) …")
    try:
        if not _python().exists():
            subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True,
                           capture_output=True, timeout=INSTALL_TIMEOUT_S)
        done = subprocess.run(
            [str(MLSERVER_VENV / "bin" / "pip"), "install", "--quiet", "mlserver", "mlserver-sklearn",
             f"scikit-learn=={sklearn}", "uvloop<0.22"],
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env=_env())
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"installing MLServer failed: {exc}"
    if done.returncode != 0:
        return None, f"pip install mlserver failed: {(done.stderr or done.stdout).strip()[-300:]}"
    versions = installed()
    if not _usable(versions, sklearn):
        return None, f"MLServer was installed but is not usable: {versions}"
    return versions, ""


def write_model_settings(models: Path, name: str, artifact: Path) -> Path:
    """``models/<name>/model-settings.json``: the SKLearn runtime on ``artifact`` (the very file the
    Shipyard model server loads)."""
    folder = models / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model-settings.json"
    path.write_text(json.dumps({
        "name": name,
        "implementation": IMPLEMENTATION,
        "parameters": {"uri": str(artifact.resolve()), "version": "1"},
    }, indent=2))
    return path


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


class MLServer:
    """``mlserver start`` of a copy of the models directory with one variant's settings, on free ports."""

    def __init__(self, work: Path, models: Path, name: str, variant: Variant) -> None:
        self.variant = variant
        self.name = name
        self.port = free_port()
        self.root = work / f"mlserver-{variant.key}"
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in models.iterdir():
            target = self.root / folder.name
            target.mkdir(exist_ok=True)
            for file in folder.iterdir():
                (target / file.name).write_bytes(file.read_bytes())
        settings = {"host": "127.0.0.1", "http_port": self.port, "grpc_port": free_port(),
                    "metrics_port": free_port(), **variant.settings}
        (self.root / "settings.json").write_text(json.dumps(settings, indent=2))
        self.settings = settings
        self.log = self.root / "mlserver.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its V2 infer URL."""
        return f"http://127.0.0.1:{self.port}/v2/models/{self.name}/infer"

    def start(self, timeout: float = 180.0) -> MLServer:
        """Start and wait until the model is ready."""
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(self.root)], cwd=self.root, env=_env(),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        ready = f"http://127.0.0.1:{self.port}/v2/models/{self.name}/ready"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlserver exited with {self.process.returncode}: "
                                   f"{self.log.read_text(errors='replace')[-1500:]}")
            if _get(ready) == 200:
                return self
            time.sleep(0.2)
        self.stop()
        tail = self.log.read_text(errors="replace")[-1500:]
        raise TimeoutError(f"MLServer not ready after {timeout:.0f}s: {tail}")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM its process group (the server and its inference workers: it was started in a session
        of its own), then SIGKILL if it lingers."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):  # an inference worker left behind
            os.killpg(process.pid, signal.SIGKILL)
