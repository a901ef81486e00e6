"""What a service knows of its own health: its store, the bus, and the disks it writes to.

A service is healthy while every check passes. Each check says what it found, so that an
operator reads *why* a service is unhealthy (``shipyard status``, the gateway's GetStatus):
"NATS not answering (…)", "disk /var/lib/shipyard: 12.0 MiB free, below the 256.0 MiB minimum".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from shipyard.kit.units import human_size

# Settings name of the free-space threshold, as an operator sets it.
MIN_FREE_SETTING = "SHIPYARD_MIN_FREE_BYTES"


@dataclass(frozen=True)
class Check:
    """One thing a service's health depends on, and what was found."""

    name: str
    healthy: bool
    detail: str


@dataclass(frozen=True)
class Report:
    """A service's checks at one moment."""

    checks: tuple[Check, ...]

    @property
    def healthy(self) -> bool:
        """Whether every check passed."""
        return all(check.healthy for check in self.checks)

    @property
    def summary(self) -> str:
        """What is wrong, check by check, or "SERVING"."""
        problems = [f"{check.name}: {check.detail}" for check in self.checks if not check.healthy]
        return "; ".join(problems) or "SERVING"


def _existing(path: Path) -> Path:
    """``path``, or the nearest folder above it that exists (a store not created yet)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


Statvfs = Callable[[str], os.statvfs_result]


def disk_checks(paths: Sequence[Path], min_free: int, statvfs: Statvfs = os.statvfs) -> list[Check]:
    """One check per file system holding ``paths`` (named after the first path on it): healthy while
    at least ``min_free`` bytes are free to the platform's user."""
    checks: list[Check] = []
    seen: set[int] = set()
    for path in paths:
        where = _existing(path)
        try:
            device = where.stat().st_dev
            space = statvfs(str(where))
        except OSError as exc:
            checks.append(Check(f"disk {path}", False, f"free space unknown ({exc.strerror or exc})"))
            continue
        if device in seen:
            continue
        seen.add(device)
        free, total = space.f_bavail * space.f_frsize, space.f_blocks * space.f_frsize
        detail = f"{human_size(free)} free of {human_size(total)}"
        if free < min_free:
            detail += (f", below the {human_size(min_free)} minimum ({MIN_FREE_SETTING}): writes will fail "
                       "with no space left on device")
        checks.append(Check(f"disk {path}", free >= min_free, detail))
    return checks


def store_dir(store_url: str) -> Path | None:
    """The folder of a SQLite store's file; None for a store elsewhere (MongoDB)."""
    if not store_url.startswith("sqlite:///") or store_url.endswith("/:memory:"):
        return None
    # sqlite:///<absolute path>: the path keeps one leading slash ("//x" is not "/x" to Path).
    return Path("/" + unquote(urlsplit(store_url).path).lstrip("/")).parent


def blob_dir(blob_url: str) -> Path | None:
    """The folder of a file:// blob store; None for one elsewhere (S3)."""
    if blob_url.startswith("file://"):
        return Path(blob_url.removeprefix("file://"))
    return None
