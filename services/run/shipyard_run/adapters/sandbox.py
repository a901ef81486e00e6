"""A run's own view of the machine: namespaces composed with bubblewrap (``bwrap``) in which the
run sees only what is its own.

The root is bwrap's empty in-memory file system: nothing of the host appears unless it is bound.
The run sees the system read-only (/usr, /etc, the /bin, /sbin and /lib* links), the Python it
runs read-only (run-svc's own: its prefixes, the real executable's directory and the shipyard
package, whose SDK runs import), its own files under ``OWN`` (the code checkout — its working
directory —, the output directory, a home directory, the TensorBoard directory and the metrics
file writable; the hyperparameters and the config file read-only), its inputs read-only and its
outputs writable at their mount paths, a /tmp of its own (a workspace directory: on disk, as the
host's /tmp usually is, so that large temporary files take no memory), a private in-memory
/dev/shm (shared memory, e.g. for data loader workers), a /proc of its own PID namespace, a
minimal /dev (plus the GPUs it was given), and an IPC namespace of its own. The network is the
host's: every port of the platform authenticates. Who the run is (an unprivileged uid, or a user
namespace) is ``shipyard.kit.bubblewrap``'s part.

No ``--new-session``: the run's processes stay in the process group of the wrapper that
run-svc starts, so stopping a run (SIGTERM, then SIGKILL, to that group) reaches them; the
group's session has no controlling terminal (run-svc starts it with ``setsid``), so there is no
terminal to inject input into. No ``--die-with-parent`` either: the run must outlive run-svc
(bwrap's parent is that wrapper), and killing the group ends the sandbox already.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from shipyard.kit.bubblewrap import Bubblewrap, system_view

OWN = "/run/shipyard"  # where a run finds its own files (no mount path may be under /run)
# A GPU run's devices besides /dev/nvidia<N>: the driver's control and memory devices.
GPU_DEVICES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")


@dataclass(frozen=True)
class Bind:
    """A host path the run sees at ``target``."""

    source: str
    target: str
    writable: bool = False


@dataclass(frozen=True)
class View:
    """What one run sees besides the system and its Python: ``binds`` in order (its own files,
    then its mounts), its working directory, the host directory it sees as /tmp, and the GPUs it
    was given."""

    binds: tuple[Bind, ...]
    chdir: str
    tmp: str
    gpus: tuple[int, ...] = ()


@functools.cache
def interpreter() -> tuple[str, ...]:
    """The directories of the Python runs use (run-svc's own), outermost first, none inside another."""
    import shipyard  # the package whose SDK (shipyard.sdk) runs import

    found = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, os.path.dirname(
        os.path.realpath(sys.executable)), os.path.dirname(os.path.realpath(shipyard.__file__)))}
    ordered = sorted(found, key=lambda p: (p.count("/"), p))
    return tuple(p for p in ordered if not any(p != q and _inside(p, q) for q in ordered))


def holding(path: Path) -> str:
    """The directory of the Python runs use that holds ``path`` (and would show it to every run);
    "" when none does."""
    real = os.path.realpath(path)
    return next((directory for directory in interpreter() if _inside(real, directory)), "")


def plan(view: View, sandbox: Bubblewrap, python: tuple[str, ...] | None = None) -> list[str]:
    """bwrap and its options for ``view`` (up to the command, which ``sandbox.command`` wraps)."""
    python = interpreter() if python is None else python
    args = [*sandbox.namespaces(), *system_view(), "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--tmpfs", "/dev/shm", "--bind", view.tmp, "/tmp"]
    tree = _Tree(made={"/", "/tmp", "/dev/shm"}, bound=["/usr", "/etc", "/proc", "/dev"])
    for directory in python:
        if not tree.shows(directory):  # e.g. a system Python, under /usr
            args += [*tree.parents(directory), "--ro-bind", directory, directory]
    for bind in view.binds:
        option = "--bind" if bind.writable else "--ro-bind"
        args += [*tree.parents(bind.target), option, bind.source, bind.target]
    if view.gpus:
        devices = [*GPU_DEVICES, *(f"/dev/nvidia{n}" for n in view.gpus)]
        args += [a for d in devices if os.path.exists(d) for a in ("--dev-bind", d, d)]
        args += ["--ro-bind", "/sys", "/sys"]  # CUDA reads the devices' topology there
    return [*args, "--chdir", view.chdir]


@dataclass
class _Tree:
    """The sandbox's directories as the plan makes them: ``made`` in its in-memory file systems,
    ``bound`` from the host (nothing can be made inside those)."""

    made: set[str]
    bound: list[str]

    def shows(self, path: str) -> bool:
        """Whether ``path`` is inside what is bound already."""
        return any(_inside(path, b) for b in self.bound)

    def parents(self, path: str) -> list[str]:
        """``--dir`` for each missing directory above ``path``, so that it is 0755 (bwrap makes
        those it is not told about 0700, which a run's unprivileged user could not pass); then
        ``path`` counts as bound."""
        args: list[str] = []
        for parent in map(str, reversed(Path(path).parents)):
            if parent not in self.made and not self.shows(parent):
                args += ["--dir", parent]
                self.made.add(parent)
        self.bound.append(path)
        return args


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")
