"""What defines a run's local Python environment, and its digest.

An image resolves to a Python version and requirement lines (repo-svc's catalog); the local executor
builds one environment per digest and reuses it. The digest covers what the environment holds:
the Python (major.minor), the requirement lines as given (order kept: pip reads them in order) and
the Shipyard SDK every environment carries, so a new SDK makes new environments.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from shipyard.kit.errors import InvalidArgument

PYTHON = re.compile(r"3\.\d{1,2}")
REQUIREMENTS_MAX = 500
# pip options a requirement line may not carry: they would change where packages come from (the
# operator's index settings decide that) or read files outside what defines the environment.
_OPTION = re.compile(r"^\s*-")


def platform_python() -> str:
    """The platform's own Python as major.minor: what an image that names none gets."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def sdk_module() -> Path:
    """The SDK's source file (``shipyard/sdk.py``, stdlib only): the local executor copies it into
    every environment, the one piece of Shipyard a run's code sees."""
    from shipyard import sdk

    return Path(sdk.__file__)


@functools.cache
def sdk_fingerprint() -> str:
    """sha256 of the SDK module every environment carries (``shipyard.sdk``)."""
    from shipyard import sdk

    return hashlib.sha256(Path(sdk.__file__).read_bytes()).hexdigest()


def check_python(python: str, field: str) -> str:
    """``python`` as major.minor (empty: the platform's); InvalidArgument naming ``field`` otherwise."""
    if not python:
        return ""
    if not PYTHON.fullmatch(python):
        raise InvalidArgument(field, f"must be a Python version as major.minor, e.g. 3.11 (got {python!r})")
    return python


def check_requirements(lines: Sequence[str], field: str) -> tuple[str, ...]:
    """Requirement lines, stripped, blank lines and comments dropped; InvalidArgument naming the line
    (``field[i]``) that pip could not read or that carries an option."""
    kept: list[str] = []
    for index, raw in enumerate(lines):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if _OPTION.match(line):
            raise InvalidArgument(f"{field}[{index}]", f"{line!r}: options are not allowed in an image's "
                                  "requirements (the operator's package index settings apply to every build)")
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            raise InvalidArgument(f"{field}[{index}]",
                                  f"{line!r} is not a requirement pip can read: {exc}") from None
        if requirement.url:  # a file: URL reads the platform's files, a git one builds code as it
            raise InvalidArgument(f"{field}[{index}]", f"{line!r}: direct references (name @ URL) are not "
                                  "allowed; packages come from the package index")
        kept.append(line)
    if len(kept) > REQUIREMENTS_MAX:
        raise InvalidArgument(field, f"at most {REQUIREMENTS_MAX} requirements (got {len(kept)})")
    return tuple(kept)


def environment_digest(python: str, requirements: Sequence[str]) -> str:
    """The environment's identity: sha256 over its Python, its requirement lines and the SDK."""
    body = {"python": python or platform_python(), "requirements": list(requirements),
            "sdk": sdk_fingerprint()}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
