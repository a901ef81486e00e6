"""A run's own view of the machine: namespaces composed with bubblewrap (``bwrap``) in which the
run sees only what is its own.

The root is bwrap's empty in-memory file system: nothing of the host appears unless it is bound.
The run sees the system read-only (/usr, /etc, the /bin, /sbin and /lib* links), the Python it runs
read-only (its environment's directory and its base interpreter's prefix, that interpreter's own
site-packages shown empty; for a run submitted before environments existed, run-svc's own Python:
its prefixes, the real executable's directory and the shipyard package), its own files under
``OWN`` (the code checkout — its working directory —, the output directory, a home directory, the
TensorBoard directory and the metrics file writable; the hyperparameters and the config file
read-only), its inputs and outputs writable at their mount paths, a /tmp of its own
(a workspace directory: on disk, as the host's /tmp usually is, so that large temporary files take
no memory), a private in-memory /dev/shm (shared memory, e.g. for data loader workers), a /proc of
its own PID namespace, a minimal /dev (plus the GPUs it was given), and an IPC namespace of its
own. The network is the host's: every port of the platform authenticates. Who the run is (an
unprivileged uid, or a user namespace), and composing the view, are ``shipyard.kit.bubblewrap``'s
part (serving-svc's model servers use it too).

No ``--new-session``: the run's processes stay in the process group of the wrapper that
run-svc starts, so stopping a run (SIGTERM, then SIGKILL, to that group) reaches them; the
group's session has no controlling terminal (run-svc starts it with ``setsid``), so there is no
terminal to inject input into. No ``--die-with-parent`` either: the run must outlive run-svc
(bwrap's parent is that wrapper), and killing the group ends the sandbox already.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from shipyard.kit.bubblewrap import GPU_DEVICES, Bind, Bubblewrap, compose, inside, python_directories

OWN = "/run/shipyard"  # where a run finds its own files (no mount path may be under /run)


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

    return python_directories(os.path.dirname(os.path.realpath(shipyard.__file__)))


def holding(path: Path) -> str:
    """The directory of the Python runs use that holds ``path`` (and would show it to every run);
    "" when none does."""
    real = os.path.realpath(path)
    return next((directory for directory in interpreter() if inside(real, directory)), "")


def plan(view: View, sandbox: Bubblewrap, python: tuple[str, ...] | None = None,
         hidden: tuple[str, ...] = ()) -> list[str]:
    """bwrap and its options for ``view`` (up to the command, which ``sandbox.command`` wraps): the
    run sees ``python`` (default: run-svc's own Python) read-only, ``hidden`` directories in it empty."""
    python = interpreter() if python is None else python
    return compose(sandbox, view.binds, view.chdir, python, tmp=view.tmp, gpus=view.gpus, hidden=hidden)


__all__ = ["GPU_DEVICES", "OWN", "Bind", "View", "holding", "interpreter", "plan"]
