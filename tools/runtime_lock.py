"""Writes requirements-run.lock: the packages running Shipyard needs (the platform with its
model-server and examples extras, so `shipyard demo` works), taken from requirements.lock.

Run it with the Python of an environment installed from requirements.lock (tools/lock.sh runs it in
the environment that resolved that lock): it follows each package's declared requirements through the
installed metadata, so the runtime lock is the dependency closure of what running needs, with the very
versions of the full lock. `make up` installs the runtime lock; `make test` the full one.
"""

from __future__ import annotations

import importlib.metadata
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
FULL_LOCK = ROOT / "requirements.lock"
RUNTIME_LOCK = ROOT / "requirements-run.lock"
# What `make up` runs: the platform, the model server its deployments start, the demo's example.
# TensorBoard (`shipyard tensorboard start RUN`) is left out: 7 more packages, 64 MB installed, for one
# command, which says how to install it where it is missing.
RUNTIME_EXTRAS = ("model-server", "examples")


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[Requirement]:
    """The platform's requirements and those of the extras running it needs."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project["optional-dependencies"]
    specs = [*project["dependencies"], *(spec for extra in RUNTIME_EXTRAS for spec in extras[extra])]
    return [Requirement(spec) for spec in specs]


def _applies(req: Requirement, extras: Iterable[str]) -> bool:
    """Whether a requirement holds on this interpreter, for the given extras of the package needing it."""
    if req.marker is None:
        return True
    # evaluate() takes this interpreter's environment for every variable not given here.
    return any(req.marker.evaluate({"extra": extra}) for extra in [*extras, ""])


def closure(roots: Iterable[Requirement]) -> set[NormalizedName]:
    """Every package the roots need, directly or through others, per the installed metadata."""
    needed: dict[NormalizedName, set[str]] = {}
    pending = [req for req in roots if _applies(req, ())]
    while pending:
        req = pending.pop()
        name = canonicalize_name(req.name)
        known = needed.get(name)
        if known is not None and set(req.extras) <= known:
            continue
        extras = needed.setdefault(name, set())
        extras |= req.extras
        for spec in importlib.metadata.requires(name) or []:
            dependency = Requirement(spec)
            if _applies(dependency, extras):
                pending.append(dependency)
    return set(needed)


def runtime_lines(full_lock: str, needed: set[NormalizedName]) -> list[str]:
    """The full lock's pins of the needed packages, in its order."""
    lines = []
    for line in full_lock.splitlines():
        if line.strip() and not line.startswith("#") and canonicalize_name(line.split("==")[0]) in needed:
            lines.append(line)
    return lines


def render(full_lock: str) -> str:
    """The text of requirements-run.lock for this environment and full lock."""
    pip = next(line for line in full_lock.splitlines() if line.startswith("# pip=="))
    header = [
        "# Exact versions of the Python packages running Shipyard needs (make up installs them): the",
        "# platform with its model-server and examples extras, the same versions as requirements.lock.",
        "# tools/lock.sh writes it (tools/runtime_lock.py) from the resolution that wrote requirements.lock.",
        pip,
    ]
    needed = closure(runtime_requirements())
    return "\n".join([*header, *runtime_lines(full_lock, needed)]) + "\n"


def main() -> None:
    """Write requirements-run.lock next to requirements.lock."""
    RUNTIME_LOCK.write_text(render(FULL_LOCK.read_text()))
    print(f"wrote {RUNTIME_LOCK}", file=sys.stderr)


if __name__ == "__main__":
    main()
