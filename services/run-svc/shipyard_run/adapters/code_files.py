"""A code snapshot's small text files, read from the blob store: what an image build reads."""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath

from shipyard.kit.blob.checkout import read_manifest
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.errors import FailedPrecondition

FILE_MAX = 256 << 10  # bytes: larger files are not build or requirement files
TOTAL_MAX = 8 << 20
SUFFIXES = (".txt", ".in", ".yml", ".yaml", ".toml", ".cfg")


def wanted(path: str, size: int) -> bool:
    """Whether a build may read the file: a requirement, YAML or TOML file or a Dockerfile, small."""
    name = PurePosixPath(path).name
    return size <= FILE_MAX and (name.startswith("Dockerfile") or name.endswith(SUFFIXES))


class StoredCodeFiles:
    """Reads snapshots stored in ``blobs`` (their manifests, then the files a build may read)."""

    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    async def text_files(self, manifest_digest: str) -> dict[str, str]:
        manifest = await read_manifest(self._blobs, manifest_digest)
        found: dict[str, str] = {}
        total = 0
        for entry in manifest.entries:
            if not wanted(entry.path, entry.size):
                continue
            total += entry.size
            if total > TOTAL_MAX:
                raise FailedPrecondition(f"the code holds over {TOTAL_MAX >> 20} MiB of requirement, YAML "
                                         "and TOML files: too many to read for a build")
            data = b"".join([chunk async for chunk in self._blobs.get(entry.sha256)])
            if hashlib.sha256(data).hexdigest() != entry.sha256:
                raise FailedPrecondition(f"the code's file {entry.path} is damaged in the blob store")
            try:
                found[entry.path] = data.decode()
            except UnicodeDecodeError:
                continue  # not text: not a build file
        return found
