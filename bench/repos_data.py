"""The dataset of ``python -m bench.repos``: seeded, incompressible, every file distinct.

Contents are AES-256-CTR keystream (the ``cryptography`` package, a dependency of the project):
~800 MiB/s on one core here, where ``random.randbytes`` gives ~70 MiB/s. Each file has its own
range of the counter (file ``i`` starts at block ``i << 64``), so no two files and no two
blocks of a file are alike: nothing compresses and the blob store deduplicates nothing.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

WRITE_CHUNK = 4 << 20
SLOW_CREATE_S = 200e-6  # creating an empty file normally costs ~30-60 us here; 0.3-1 ms when "poisoned"
PROBE_FILES = 500
DIRECTORIES = 100  # leaf directories, 10 x 10
SIGMA = 1.5  # of the log-normal file sizes: a few files of tens of MiB, many of tens of KiB


@dataclass(frozen=True)
class Dataset:
    """Where the dataset lies, and its files (manifest path → size), in creation order."""

    root: Path
    sizes: dict[str, int]

    @property
    def total(self) -> int:
        """Its size in bytes."""
        return sum(self.sizes.values())

    @property
    def files(self) -> int:
        """How many files it has."""
        return len(self.sizes)


def file_sizes(files: int, total: int, seed: int) -> list[int]:
    """``files`` log-normal sizes (at least one byte each) that add up to exactly ``total``."""
    if total < files:
        raise ValueError(f"{total} bytes cannot make {files} non-empty files")
    rng = random.Random(seed)
    raw = [rng.lognormvariate(0.0, SIGMA) for _ in range(files)]
    scale = (total - files) / sum(raw)
    sizes = [1 + int(r * scale) for r in raw]
    largest = max(range(files), key=sizes.__getitem__)
    sizes[largest] += total - sum(sizes)  # the rounding remainder: a few bytes
    return sizes


def _keystream(key: bytes, index: int) -> Cipher[modes.CTR]:
    return Cipher(algorithms.AES(key), modes.CTR((index << 64).to_bytes(16, "big")))


def write_file(path: Path, size: int, key: bytes, index: int) -> None:
    """Write ``size`` bytes of the keystream of file ``index`` to ``path`` (replacing it in place)."""
    encryptor = _keystream(key, index).encryptor()
    zeros = bytes(min(size, WRITE_CHUNK))
    with open(path, "wb") as out:
        left = size
        while left:
            n = min(left, WRITE_CHUNK)
            out.write(encryptor.update(zeros[:n]))
            left -= n


def key_of(seed: int, label: str) -> bytes:
    """The AES key of one generation of contents."""
    return hashlib.sha256(f"shipyard-bench-repos:{seed}:{label}".encode()).digest()


def generate(root: Path, files: int, total: int, seed: int) -> Dataset:
    """Write the dataset under ``root``: ``files`` files in 100 directories, ``total`` bytes."""
    rng = random.Random(seed + 1)
    key = key_of(seed, "v1")
    sizes: dict[str, int] = {}
    for index, size in enumerate(file_sizes(files, total, seed)):
        leaf = rng.randrange(DIRECTORIES)
        path = f"part-{leaf // 10:02d}/shard-{leaf % 10:02d}/sample-{index:05d}.bin"
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        write_file(target, size, key, index)
        sizes[path] = size
    return Dataset(root, sizes)


def rewrite(dataset: Dataset, count: int, seed: int, label: str) -> dict[str, int]:
    """Give ``count`` files (picked by ``seed`` and ``label``) new contents of the same sizes, in
    place (same inode, new mtime and ctime), as an editor would; the files changed and their sizes."""
    rng = random.Random(f"{seed}:{label}")
    paths = sorted(dataset.sizes)
    picked = sorted(rng.sample(paths, min(count, len(paths))))
    key = key_of(seed, label)
    for path in picked:
        index = paths.index(path)
        write_file(dataset.root / path, dataset.sizes[path], key, index)
    return {path: dataset.sizes[path] for path in picked}


def copy_tree(source: Path, dest: Path) -> None:
    """A plain copy of the dataset (for dvc's repository): new inodes, pages cached by the copy."""
    shutil.copytree(source, dest, copy_function=shutil.copyfile)


def creation_cost(parent: Path, files: int = PROBE_FILES) -> float:
    """Seconds per file to create ``files`` empty files in a new directory under ``parent`` (left
    in place: deleting them would slow the next creations, which is what this detects)."""
    parent.mkdir(parents=True, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="probe-", dir=parent)
    start = time.perf_counter()
    for index in range(files):
        os.close(os.open(os.path.join(directory, f"{index}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    return (time.perf_counter() - start) / files
