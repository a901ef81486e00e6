"""A model server's own view of the machine: the sandbox serving-svc starts each replica in.

A replica runs users' code — a custom predictor, a transformer script, even a pickled model (to
unpickle is to run code) — so it is isolated as a run is (``shipyard.kit.bubblewrap``): bwrap's
empty root with the system and the platform's Python read-only (its prefixes and the shipyard and
shipyard_model_server packages it runs), the model's files at ``MODEL`` and the transformer's at
``TRANSFORMER`` read-only (the model's files are hard links to the blob store: nothing may write
them), an in-memory /tmp (also its home), its own PID and IPC namespaces and /proc, a minimal /dev
(with the GPUs when the endpoint asks for some), as the unprivileged run user (the platform is
root) or in a user namespace. The network is the host's: serving-svc reaches the replica on its
loopback port. Nothing of serving-svc's environment passes but an allow-list (``environment``).

``--die-with-parent``: bwrap and everything in the sandbox die when serving-svc does (the model
server's own PR_SET_PDEATHSIG could not name serving-svc from inside a PID namespace). bwrap
forwards no signals: serving-svc stops a replica by signalling the server inside
(``shipyard.kit.bubblewrap.sandboxed_pid``).
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import re
from pathlib import Path

from shipyard.kit.bubblewrap import Bind, Bubblewrap, compose, python_directories
from shipyard.kit.lifetime import PARENT_ENV

MODEL = "/run/shipyard/model"
TRANSFORMER = "/run/shipyard/transformer"
HOME = "/tmp"
PATH = "/usr/local/bin:/usr/bin:/bin"
# What a replica keeps of serving-svc's environment: locale, time zone, and which GPUs to use.
PASSED = ("LANG", "LANGUAGE", "TZ", "CUDA_VISIBLE_DEVICES")


MODEL_SERVER = "shipyard_model_server"


@functools.cache
def interpreter() -> tuple[str, ...]:
    """The directories of the Python model servers run (serving-svc's own, with the shipyard and
    shipyard_model_server packages), outermost first, none inside another."""
    import shipyard

    packages = [os.path.dirname(os.path.realpath(shipyard.__file__ or ""))]
    # Found, not imported: serving-svc runs the model server as a process and never loads its code
    # (or numpy). Where it is not installed, the replica fails saying so.
    server = importlib.util.find_spec(MODEL_SERVER)
    if server is not None and server.origin is not None:
        packages.append(os.path.dirname(os.path.realpath(server.origin)))
    return python_directories(*packages)


def environment(python: str, sandboxed: bool) -> dict[str, str]:
    """A replica's whole environment: none of serving-svc's settings or secrets. Unsandboxed, the
    server asks to die with serving-svc itself (``shipyard.kit.lifetime``); sandboxed, bwrap does."""
    env = {name: value for name, value in os.environ.items() if name in PASSED or name.startswith("LC_")}
    env |= {"PATH": f"{os.path.dirname(python)}:{PATH}", "HOME": HOME, "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1"}
    if not sandboxed:
        env[PARENT_ENV] = str(os.getpid())
    return env


def gpu_indices() -> tuple[int, ...]:
    """This machine's GPUs (``/dev/nvidia<N>``): a local replica that asks for GPUs may use them all,
    as it did before it was isolated (local serving does not hand out single GPUs)."""
    found = (re.fullmatch(r"/dev/nvidia(\d+)", path) for path in glob.glob("/dev/nvidia*"))
    return tuple(sorted(int(m.group(1)) for m in found if m))


def plan(sandbox: Bubblewrap, model_dir: Path, transformer_dir: Path | None, gpus: bool,
         python: tuple[str, ...] | None = None) -> list[str]:
    """bwrap and its options for one replica, up to the command (``sandbox.command`` wraps it)."""
    binds = [Bind(str(model_dir), MODEL)]
    if transformer_dir is not None:
        binds.append(Bind(str(transformer_dir), TRANSFORMER))
    view = compose(sandbox, binds, HOME, interpreter() if python is None else python,
                   gpus=gpu_indices() if gpus else ())
    return [view[0], "--die-with-parent", *view[1:]]
