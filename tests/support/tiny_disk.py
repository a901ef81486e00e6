"""A real, small, fillable disk for tests: a tmpfs of a few MiB mounted on a folder.

Mounting needs root (CI runs as root); where it is not permitted, the test is skipped, naming why.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tiny_disk(where: Path, size: str = "4m") -> Iterator[Path]:
    """``where``, with a tmpfs of ``size`` mounted on it until the block ends."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"a small tmpfs cannot be mounted here (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill ``disk`` until at most ``leave`` bytes are free to its users; the file that filled it."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        while (free := _free(disk)) > leave:
            try:
                out.write(b"\0" * min(free - leave, 1 << 20))
            except OSError:  # full: tmpfs counts whole pages
                break
    return filler


def _free(disk: Path) -> int:
    space = os.statvfs(disk)
    return space.f_bavail * space.f_frsize
