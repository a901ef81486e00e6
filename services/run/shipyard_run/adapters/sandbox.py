"""Showing a run its inputs and outputs at their mount paths: a private mount namespace made
with bubblewrap (``bwrap``), without touching the host's directories.

The run sees the host's file system as it is: every top-level directory is bound at its own
place, so its code, Python and /tmp are where they are. A mount path that exists on the host is
bound over (in the namespace only). One that does not is made inside a private in-memory layer:
the deepest directory of it that exists on the host (``/mnt`` for ``/mnt/data``, ``/opt`` for
``/opt/dkube/input``) becomes an in-memory directory holding the host's entries again (bound
one by one) plus the missing part of the mount path — nothing is created on the host. Without a
usable ``bwrap`` nothing is namespaced: every mount stays under the workspace.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field


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
    args: list[str] = field(default_factory=list)  # bwrap and its options; empty: no namespace
    unplaced: list[str] = field(default_factory=list)  # mount paths left under the workspace


def plan(mounts: list[Mount], program: str | None) -> Plan:
    """The namespace for ``mounts`` (``program``: the bwrap to use, None when there is none)."""
    result = Plan(seen_at={m.path: m.source for m in mounts})
    if program is None:
        result.unplaced = [m.path for m in mounts]
        return result
    if not mounts:
        return result
    layers = sorted({anchor for m in mounts if (anchor := _anchor(m.path)) != "/"},
                    key=lambda path: (path.count("/"), path))
    binds: list[str] = []
    for mount in mounts:
        binds += ["--bind" if mount.writable else "--ro-bind", mount.source, mount.path]
        result.seen_at[mount.path] = mount.path
    made = [a for layer in layers for a in ("--tmpfs", layer, *_entries(layer))]
    result.args = [program, *_entries("/"), *made, *binds]
    return result


def _anchor(path: str) -> str:
    """The deepest directory of ``path`` (itself included) that exists on the host, when ``path``
    itself does not; "/" when ``path`` exists (nothing to make) or only "/" does."""
    if os.path.isdir(path):
        return "/"
    parent = os.path.dirname(path)
    while parent != "/" and not os.path.isdir(parent):
        parent = os.path.dirname(parent)
    return parent


def _entries(directory: str) -> list[str]:
    """The host's entries of ``directory``, each bound (or linked) at its own place."""
    args: list[str] = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif path == "/proc":
            args += ["--proc", "/proc"]
        elif path == "/dev":
            args += ["--dev-bind", "/dev", "/dev"]
        elif os.path.exists(path):
            args += ["--bind", path, path]
    return args
