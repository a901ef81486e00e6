"""Showing a run its inputs and outputs at their mount paths: a private mount namespace made
with bubblewrap (``bwrap``), without touching the host's directories.

The run sees the host's file system as it is (every top-level directory bound at its own place,
so its code, Python and /tmp are where they are), except for the top-level directories its mount
paths live in (``/mnt``, ``/model`` …): those are empty in-memory directories of its own, holding
only its inputs (read-only) and outputs. Roots that hold what runs need (``/home``, ``/opt``, or
any root holding the workspace or the platform's Python) are never hidden: a mount path there is
bound over the host's directory when that exists, and otherwise stays under the workspace (the
run is told). Without a usable ``bwrap`` nothing is namespaced: every mount stays under the
workspace.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@functools.cache
def bwrap() -> str | None:
    """The bwrap program, when it is installed and can make namespaces here; else None."""
    found = shutil.which("bwrap")
    if found is None:
        return None
    try:
        probe = subprocess.run([found, "--ro-bind", "/", "/", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return found if probe.returncode == 0 else None


@dataclass(frozen=True)
class Mount:
    """A mount path and the workspace directory that holds its content."""

    path: str
    source: str
    writable: bool


@dataclass
class Plan:
    """Where each mount path is seen, and the bwrap arguments that make it so."""

    seen_at: dict[str, str] = field(default_factory=dict)  # mount path → where the run finds it
    args: list[str] = field(default_factory=list)  # bwrap options; empty: no namespace
    unplaced: list[str] = field(default_factory=list)  # mount paths left under the workspace


# Never hidden: where users' and the system's own things live.
KEPT_ROOTS = frozenset({"/home", "/opt", "/root", "/srv", "/var", "/tmp", "/usr", "/etc"})


def plan(mounts: list[Mount], program: str | None, must_see: list[str]) -> Plan:
    """The namespace for ``mounts`` (``program``: the bwrap to use, None when there is none);
    ``must_see``: paths the run needs as they are (its workspace, the platform's Python)."""
    result = Plan(seen_at={m.path: m.source for m in mounts})
    if program is None or not mounts:
        result.unplaced = [m.path for m in mounts] if program is None else []
        return result
    kept = KEPT_ROOTS | {_root(os.path.realpath(path)) for path in must_see}
    hidden = {_root(m.path) for m in mounts} - kept
    binds: list[str] = []
    for mount in mounts:
        if _root(mount.path) in hidden or os.path.isdir(mount.path):
            binds += ["--bind" if mount.writable else "--ro-bind", mount.source, mount.path]
            result.seen_at[mount.path] = mount.path
        else:
            result.unplaced.append(mount.path)
    result.args = [program, *_host(hidden), *[a for root in sorted(hidden)
                                                                     for a in ("--tmpfs", root)], *binds]
    return result


def _root(path: str) -> str:
    return "/" + path.strip("/").split("/")[0]


def _host(hidden: set[str]) -> list[str]:
    """Every top-level entry of the host at its own place, except the ``hidden`` roots."""
    args: list[str] = []
    for name in sorted(os.listdir("/")):
        path = "/" + name
        if path in hidden:
            continue
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif path == "/proc":
            args += ["--proc", "/proc"]
        elif path == "/dev":
            args += ["--dev-bind", "/dev", "/dev"]
        elif Path(path).exists():
            args += ["--bind", path, path]
    return args
