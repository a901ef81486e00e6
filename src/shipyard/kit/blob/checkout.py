"""Laying a version's files out in a directory: what a run's inputs and a model server's model
directory are made of."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.blob.port import BlobStore
from shipyard.kit.manifest import Manifest, ManifestEntry


async def read_manifest(blobs: BlobStore, digest: str) -> Manifest:
    """The manifest stored as blob ``digest`` (an empty one for "")."""
    if not digest:
        return Manifest(entries=())
    return Manifest.decode(b"".join([chunk async for chunk in blobs.get(digest)]))


async def check_out(blobs: BlobStore, manifest: Manifest, target: Path, link: bool = True) -> None:
    """Write the manifest's files under ``target``.

    ``link``: hard-link each file to a local store's read-only blob where the file system allows
    it (no copy; readers cannot change the store through it); otherwise, and for S3, the blob is
    copied. Copies keep the executable bit of their entry.
    """
    local = blobs if link and isinstance(blobs, LocalBlobStore) else None
    copies = await asyncio.to_thread(_place, manifest, target, local)
    for entry, path in copies:
        with path.open("wb") as out:
            async for chunk in blobs.get(entry.sha256):
                await asyncio.to_thread(out.write, chunk)
        if entry.mode & 0o100:
            await asyncio.to_thread(path.chmod, 0o755)


def _place(manifest: Manifest, target: Path,
           local: LocalBlobStore | None) -> list[tuple[ManifestEntry, Path]]:
    """Make the directories and the hard links; the entries still to copy."""
    target.mkdir(parents=True, exist_ok=True)
    copies: list[tuple[ManifestEntry, Path]] = []
    for entry in manifest.entries:
        path = target.joinpath(*entry.path.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        if local is None or not _linked(local.path_of(entry.sha256), path):
            copies.append((entry, path))
    return copies


def _linked(blob: Path, path: Path) -> bool:
    """Hard-link the store's read-only (0444) file at ``path``. False across file systems."""
    try:
        os.link(blob, path)
    except OSError:
        return False
    return True
