"""Path imports: which directories on the platform's own hosts a version may be read from.

The operator names the roots (SHIPYARD_PATH_IMPORT_ROOTS); nothing outside them is read, and
nothing at all when there are none. Reading a directory is an operator's grant: only operators
may ask for it unless SHIPYARD_PATH_IMPORTS_FOR is "all". The platform reads as its own user, so
a user who may ask reads whatever that user can read under the roots (a 0700 directory of another
account included) — which is why the default is operators only. Refusals begin with
:data:`REFUSED`, which clients take as "upload the directory instead" (see CreateVersionFromPath
in repos.proto).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

REFUSED = "path import refused"
OPERATORS_ONLY = "operators"
EVERYONE = "all"


@dataclass(frozen=True)
class Directory:
    """A directory as this host sees it: its resolved path and its identity on disk."""

    real_path: str
    device: int
    inode: int


def parse_roots(text: str) -> tuple[str, ...]:
    """The roots of the setting: absolute paths separated by ``os.pathsep``, empty ones skipped."""
    roots = tuple(os.path.normpath(part) for part in text.split(os.pathsep) if part.strip())
    relative = [root for root in roots if not os.path.isabs(root)]
    if relative:
        raise ValueError(f"SHIPYARD_PATH_IMPORT_ROOTS: {relative[0]!r} is not an absolute path")
    return roots


def parse_grantees(text: str) -> bool:
    """SHIPYARD_PATH_IMPORTS_FOR: whether every user may ask (``all``) or only operators
    (``operators``, the default)."""
    value = text.strip().lower() or OPERATORS_ONLY
    if value not in (OPERATORS_ONLY, EVERYONE):
        raise ValueError(f"SHIPYARD_PATH_IMPORTS_FOR: must be {OPERATORS_ONLY!r} or {EVERYONE!r}, "
                         f"not {text!r}")
    return value == EVERYONE


def outside_roots(real_path: str, roots: tuple[str, ...]) -> bool:
    """Whether a resolved path lies outside every root (a root itself is inside)."""
    return not any(os.path.commonpath([root, real_path]) == root for root in roots)
