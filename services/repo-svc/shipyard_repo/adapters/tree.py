"""repo-svc's side of storing trees: the kit's BlobTree as the BlobUploader port, and the
directories of this host for path imports."""

from __future__ import annotations

import asyncio
import os
import stat

from shipyard.kit.blob.tree import BlobTree
from shipyard_repo.app.ports import BlobUploader, Directories
from shipyard_repo.domain.paths import Directory


class BlobTreeUploader(BlobTree, BlobUploader):
    """Directory trees into the blob store (see ``shipyard.kit.blob.tree``)."""


class HostDirectories(Directories):
    """Directories of this host, through ``os``."""

    async def look_up(self, path: str) -> Directory | None:
        return await asyncio.to_thread(_look_up, path)


def _look_up(path: str) -> Directory | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return Directory(os.path.realpath(path), st.st_dev, st.st_ino)
