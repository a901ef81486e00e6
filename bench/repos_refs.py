"""The references of ``python -m bench.repos``: sha256 + copy of every file, and ``dvc add``.

dvc is not a dependency of the project: the benchmark installs it, once, into its own
virtual environment ``.venv-dvc`` at the repository root (ignored by git), and runs it as a
subprocess. Only ``dvc add`` is timed, never the install, ``git init`` or ``dvc init``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.procs import REPO_ROOT
from bench.repos_data import copy_tree
from shipyard.kit.manifest import copy_tree_reference

DVC_VENV = REPO_ROOT / ".venv-dvc"
INSTALL_TIMEOUT_S = 900


@dataclass(frozen=True)
class Timing:
    """One timed run: seconds, and its window (``time.monotonic()``) for the CPU accounting."""

    seconds: float
    window: tuple[float, float]


def timed(action: Callable[[], object]) -> Timing:
    """Run ``action`` and time it."""
    start = time.monotonic()
    action()
    end = time.monotonic()
    return Timing(end - start, (start, end))


def sha256_and_copy(data: Path, dest: Path) -> Timing:
    """Reference of goal 2: ``copy_tree_reference`` (one thread: sha256, then ``shutil.copyfile``)."""
    return timed(lambda: copy_tree_reference(data, dest))


def sha256_copy_and_sync(data: Path, dest: Path) -> Timing:
    """R1 made durable like the local blob store: the same, then ``os.sync()`` (for information)."""

    def run() -> None:
        copy_tree_reference(data, dest)
        os.sync()

    return timed(run)


def _dvc() -> Path:
    return DVC_VENV / "bin" / "dvc"


def dvc_version() -> str | None:
    """The installed dvc's version, or None when it does not run."""
    if not _dvc().exists():
        return None
    try:
        done = subprocess.run(
            [str(_dvc()), "--version"], capture_output=True, text=True, timeout=120, env=dvc_env(None)
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_dvc(say: Callable[[str], None]) -> tuple[str | None, str]:
    """dvc's version once installed (installing it into .venv-dvc when missing); else None and why."""
    version = dvc_version()
    if version is not None:
        return version, ""
    say(f"installing dvc into {DVC_VENV} (not a project dependency; once, a minute or two) …")
    try:
        if not (DVC_VENV / "bin" / "python").exists():
            subprocess.run(
                [sys.executable, "-m", "venv", str(DVC_VENV)],
                check=True,
                capture_output=True,
                timeout=INSTALL_TIMEOUT_S,
            )
        done = subprocess.run(
            [str(DVC_VENV / "bin" / "pip"), "install", "--quiet", "dvc"],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"installing dvc failed: {exc}"
    if done.returncode != 0:
        return None, f"pip install dvc failed: {(done.stderr or done.stdout).strip()[-300:]}"
    version = dvc_version()
    return (version, "") if version else (None, "dvc was installed but `dvc --version` fails")


def dvc_env(site_cache: Path | None) -> dict[str, str]:
    """dvc's environment: no analytics, no update check; its site cache (state DB) under ours."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}
    env.pop("VIRTUAL_ENV", None)
    if site_cache is not None:
        env["DVC_SITE_CACHE_DIR"] = str(site_cache)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}"
        )


def prepare_dvc_repo(data: Path, repo: Path) -> dict[str, str]:
    """A fresh ``git init`` + ``dvc init`` repository at ``repo`` with a copy of the dataset in
    ``repo/data``; dvc's cache is ``repo/.dvc/cache`` (same disk), cache type left at its default."""
    repo.mkdir(parents=True)
    env = dvc_env(repo.parent / f"{repo.name}-site-cache")
    _run(["git", "init", "-q"], repo, env)
    _run([str(_dvc()), "init", "-q"], repo, env)
    _run([str(_dvc()), "config", "core.analytics", "false"], repo, env)
    _run([str(_dvc()), "config", "core.autostage", "false"], repo, env)
    copy_tree(data, repo / "data")
    return env


def dvc_add(repo: Path, env: dict[str, str]) -> Timing:
    """Reference of goal 1: ``dvc add data`` (md5 of every file, copy into .dvc/cache, data.dvc)."""
    return timed(lambda: _run([str(_dvc()), "add", "-q", "data"], repo, env))


def dvc_add_and_sync(repo: Path, env: dict[str, str]) -> Timing:
    """R2 made durable like the local blob store: ``dvc add data``, then ``os.sync()`` (for information)."""

    def run() -> None:
        _run([str(_dvc()), "add", "-q", "data"], repo, env)
        os.sync()

    return timed(run)
