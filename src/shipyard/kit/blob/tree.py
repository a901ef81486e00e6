"""Storing a directory tree in the blob store: every file read once, hashed while it is copied
into the store (``BlobStore.put_files``), a few files at a time, then the manifest.

With a hash cache (path imports of a user's directory, versioned again and again), a file whose
size, mtime, inode and ctime are unchanged since it was last stored is not read again, unless
its blob has gone from the store meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from shipyard.kit.blob.port import BlobStore, DigestMismatch
from shipyard.kit.manifest import (
    FoundFile,
    HashCache,
    Manifest,
    ManifestEntry,
    default_workers,
    file_mode,
    unchanged,
    walk_files,
)


class FileChanged(ValueError):
    """A file changed while it was being stored; the message names it."""


class BlobTree:
    """Stores directory trees in ``blobs``; hash caches (when asked for) live in ``cache_dir``."""

    def __init__(self, blobs: BlobStore, cache_dir: Path | None = None, workers: int | None = None) -> None:
        self._blobs = blobs
        self._cache_dir = cache_dir
        self._workers = workers or default_workers()

    async def store_tree(self, root: Path, remember: bool = False) -> Manifest:
        """Store every file under ``root`` (by the rules of ``manifest.scan``) and the manifest;
        the manifest. ``remember``: keep the files' hashes so that the next call reads only what
        changed. Raises ValueError naming what cannot be stored (FileChanged for a file that
        changed while it was read), OSError for what cannot be read."""
        files = await asyncio.to_thread(walk_files, root)
        cache = self._cache_of(root) if remember else None
        if cache is not None:
            await asyncio.to_thread(cache.load)
        digests = await self._cached_digests(files, cache)
        await self._store_files([f for f in _largest_first(files) if f.path not in digests], digests, cache)
        manifest = Manifest(tuple(ManifestEntry(f.path, f.st.st_size, digests[f.path], file_mode(f.st))
                                  for f in files))
        await put_manifest(self._blobs, manifest)
        if cache is not None:
            await asyncio.to_thread(cache.save)
        return manifest

    def _cache_of(self, root: Path) -> HashCache | None:
        if self._cache_dir is None:
            return None
        key = hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:32]
        return HashCache(self._cache_dir / f"{key}.json")

    async def _cached_digests(self, files: list[FoundFile], cache: HashCache | None) -> dict[str, str]:
        """Digests the cache vouches for whose blobs are still stored."""
        if cache is None:
            return {}
        cached = {f.path: digest for f in files if (digest := cache.lookup(f.source, f.st)) is not None}
        gone = set(await self._blobs.missing(sorted(set(cached.values()))))
        return {path: digest for path, digest in cached.items() if digest not in gone}

    async def _store_files(
        self, files: list[FoundFile], digests: dict[str, str], cache: HashCache | None
    ) -> None:
        """Store ``files``, adding their digests to ``digests`` (and the cache); FileChanged if any
        changed while it was read."""
        started_ns = time.time_ns()
        try:
            stored = await self._blobs.put_files([Path(f.source) for f in files], self._workers)
        except DigestMismatch:
            raise FileChanged("a file changed while it was being stored; "
                              "try again once it is written") from None
        afters = await asyncio.to_thread(lambda: [os.stat(f.source) for f in files])
        for file, (digest, size), after in zip(files, stored, afters, strict=True):
            if size != file.st.st_size or not unchanged(file.st, after):
                raise FileChanged(_changed(file.path))
            digests[file.path] = digest
            if cache is not None:
                cache.store(file.source, file.st, digest, started_ns)


def _changed(path: str) -> str:
    return f"{path!r} changed while it was being stored; try again once it is written"


async def put_manifest(blobs: BlobStore, manifest: Manifest) -> str:
    """Store ``manifest`` itself as a blob (a version names it by this digest); its digest."""
    encoded = manifest.encode()
    await blobs.put(manifest.digest, _once(encoded), len(encoded))
    return manifest.digest


def _largest_first(files: list[FoundFile]) -> list[FoundFile]:
    """Big files first, so no worker is left with one at the end while the others idle."""
    return sorted(files, key=lambda f: f.st.st_size, reverse=True)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
