"""Reads a job's files on a cluster's login node for a study's File and TensorFlowEvent collectors: this
module's own source runs there (``python3 -``) as the cluster's account, and prints the files as JSON.

A trial is untrusted code, and every run on a cluster may share the cluster's account, so nothing outside
the job's working directory can be read through it: each directory is opened under the one above it
without following a link (``openat`` with O_NOFOLLOW), a file only when it is a regular file the account
owns (checked on the opened descriptor, so swapping the name for a link or a FIFO meanwhile reads nothing),
opened without blocking (a FIFO never holds the read up), ``..`` refused, at most ``max_bytes`` in all (the
newest files first), at most FILES_MAX files and DEPTH_MAX levels looked at. Standard library only, and
Python 3.7's syntax: the cluster's own Python runs it.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys

FILES_MAX = 10_000
DEPTH_MAX = 32
_DIRECTORY = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def read_job_files(base: str, path: str, max_bytes: int, owner: int | None = None) -> dict[str, bytes]:
    """The regular files at ``path`` under the directory ``base`` (``/a/b`` is ``base/a/b``): the file, or
    every file of the directory's tree, by their path from ``base`` ("/a/b/c"), newest first until
    ``max_bytes``; nothing reached through a link, nothing but regular files owned by ``owner`` (any
    owner when None: the local executor's runs have their own users)."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        return {}
    try:
        top = os.open(base, _DIRECTORY)
    except OSError:
        return {}
    try:
        found: list[tuple[float, list[str]]] = []  # (mtime, path parts)
        _gather(top, parts, found, 0, owner)
        files: dict[str, bytes] = {}
        left = max_bytes
        for _, names in sorted(found, key=lambda item: -item[0]):
            if left <= 0:
                break
            data = _read(top, names, left, owner)
            if data is not None:
                files["/" + "/".join(names)] = data
                left -= len(data)
        return files
    finally:
        os.close(top)


def _gather(top: int, names: list[str], found: list[tuple[float, list[str]]], depth: int,
            owner: int | None) -> None:
    """The account's regular files at ``names`` under ``top``: the file, or those of the directory's tree
    (looked at, not opened: each is opened again, safely, when read)."""
    if len(found) >= FILES_MAX:
        return
    descriptor = _open(top, names)
    if descriptor is None:
        return
    try:
        info = os.fstat(descriptor)
        if _regular(info, owner):
            found.append((info.st_mtime, names))
        elif stat.S_ISDIR(info.st_mode) and depth <= DEPTH_MAX:
            for name in sorted(os.listdir(descriptor)):
                _gather(top, [*names, name], found, depth + 1, owner)
    except OSError:
        return
    finally:
        os.close(descriptor)


def _open(top: int, names: list[str]) -> int | None:
    """``names`` opened under ``top``, each directory on the way without following a link; None when that
    cannot be (a link, gone, not readable)."""
    folder, opened = top, []
    try:
        for name in names[:-1]:
            folder = os.open(name, _DIRECTORY, dir_fd=folder)
            opened.append(folder)
        return os.open(names[-1], _FILE, dir_fd=folder) if names else os.dup(top)
    except OSError:
        return None
    finally:
        for descriptor in opened:
            os.close(descriptor)


def _read(top: int, names: list[str], most: int, owner: int | None) -> bytes | None:
    """At most ``most`` bytes of the file, when it is still a regular file of ``owner``."""
    descriptor = _open(top, names)
    if descriptor is None:
        return None
    try:
        if not _regular(os.fstat(descriptor), owner):
            return None
        chunks = []
        while most > 0:
            chunk = os.read(descriptor, min(most, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            most -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(descriptor)


def _regular(info: os.stat_result, owner: int | None) -> bool:
    return stat.S_ISREG(info.st_mode) and (owner is None or info.st_uid == owner)


def main() -> None:
    """``python3 - BASE PATH MAX_BYTES``: the files as JSON, path → base64 of the bytes."""
    base, path, max_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    files = read_job_files(base, path, max_bytes, os.getuid())
    json.dump({name: base64.b64encode(data).decode() for name, data in files.items()}, sys.stdout)


if __name__ == "__main__":
    main()
