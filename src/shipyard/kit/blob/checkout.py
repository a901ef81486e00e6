"""Laying a version's files out in a directory: what a run's inputs and a model server's model
directory are made of.

Every blob is verified as it is laid out: a blob whose bytes no longer hash to its digest (a
damaged disk, or anyone who managed to write to the store) is quarantined — moved out of the store,
so it is never served again and the next push of those bytes repairs it — and the check-out fails
with DamagedBlob, naming the file. A hard-linked blob already verified is not hashed again while its
inode, size, mtime and ctime stay the same (a write or a chmod changes ctime).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from shipyard.kit.blob.digest import copy_file_hashed, copy_verified
from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.blob.port import BlobStore, DigestMismatch
from shipyard.kit.errors import FailedPrecondition
from shipyard.kit.manifest import Manifest, ManifestEntry

log = logging.getLogger(__name__)

_VERIFIED_MAX = 200_000
# digest → the (inode, size, mtime, ctime) of the store's file when its bytes last hashed right.
_verified: dict[str, tuple[int, int, int, int]] = {}


class DamagedBlob(FailedPrecondition):
    """A blob's bytes no longer match its digest; it was quarantined and is not served."""

    def __init__(self, digest: str, path: str) -> None:
        super().__init__(
            f"the stored content of {path!r} (blob {digest}) is damaged: its bytes no longer match their "
            "digest. It was quarantined and is not served; push the version's files again to repair it")
        self.digest = digest


EMPTY_MANIFEST = Manifest(entries=()).digest


async def read_manifest(blobs: BlobStore, digest: str) -> Manifest:
    """The manifest stored as blob ``digest`` (an empty one for "", and for the empty manifest's own
    digest: an empty version, e.g. a repo's first before anything was uploaded, stores no blob)."""
    if not digest or digest == EMPTY_MANIFEST:
        return Manifest(entries=())
    return Manifest.decode(b"".join([chunk async for chunk in blobs.get(digest)]))


async def check_out(blobs: BlobStore, manifest: Manifest, target: Path, link: bool = True) -> None:
    """Write the manifest's files under ``target``, each verified against its digest.

    ``link``: hard-link each file to a local store's read-only blob where the file system allows
    it (no copy); otherwise, and for S3, the blob is copied. Copies keep the executable bit of
    their entry. Raises DamagedBlob (after quarantining the blob) when a blob fails its check.
    """
    local = blobs if link and isinstance(blobs, LocalBlobStore) else None
    unverified, copies = await asyncio.to_thread(_place, manifest, target, local)
    if local is not None:
        for entry in await asyncio.to_thread(_damaged, local, unverified):
            await _quarantine(blobs, entry)
    for entry, path in copies:
        with path.open("wb") as out:
            try:
                await copy_verified(blobs.get(entry.sha256), out, entry.sha256, entry.size)
            except DigestMismatch:
                await _quarantine(blobs, entry)
        if entry.mode & 0o100:
            await asyncio.to_thread(path.chmod, 0o755)


async def _quarantine(blobs: BlobStore, entry: ManifestEntry) -> None:
    _verified.pop(entry.sha256, None)
    moved = await blobs.quarantine(entry.sha256)
    log.error("blob %s (file %r) is damaged; %s", entry.sha256, entry.path,
              "quarantined" if moved else "it was already gone from the store")
    raise DamagedBlob(entry.sha256, entry.path)


def _place(manifest: Manifest, target: Path, local: LocalBlobStore | None
           ) -> tuple[list[ManifestEntry], list[tuple[ManifestEntry, Path]]]:
    """Make the directories and the hard links; the linked entries still to verify, and the entries
    to copy. A link changes the blob's ctime, so a blob verified before is re-stamped after it."""
    target.mkdir(parents=True, exist_ok=True)
    unverified: list[ManifestEntry] = []
    copies: list[tuple[ManifestEntry, Path]] = []
    for entry in manifest.entries:
        path = target.joinpath(*entry.path.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = local.path_of(entry.sha256) if local is not None else None
        stamp = _stamp(blob) if blob is not None else None
        known = stamp is not None and _verified.get(entry.sha256) == stamp
        if blob is None or not _linked(blob, path):
            copies.append((entry, path))
        elif known and (after := _stamp(blob)) is not None:
            _verified[entry.sha256] = after
        else:
            unverified.append(entry)
    return unverified, copies


def _linked(blob: Path, path: Path) -> bool:
    """Hard-link the store's read-only (0444) file at ``path``. False across file systems."""
    try:
        os.link(blob, path)
    except OSError:
        return False
    return True


class _Discard:
    def write(self, data: memoryview, /) -> int:
        return len(data)


def _stamp(blob: Path) -> tuple[int, int, int, int] | None:
    """What changes when a blob file is written or its mode changed; None when it is gone."""
    try:
        st = blob.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _damaged(local: LocalBlobStore, entries: list[ManifestEntry]) -> list[ManifestEntry]:
    """The linked entries whose blob no longer hashes to its digest (blocking); the others are
    remembered as verified."""
    damaged = []
    for entry in {e.sha256: e for e in entries}.values():
        blob = local.path_of(entry.sha256)
        digest, size = copy_file_hashed(blob, _Discard())
        if digest != entry.sha256 or size != entry.size:
            damaged.append(entry)
            continue
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        if (stamp := _stamp(blob)) is not None:
            _verified[entry.sha256] = stamp
    return damaged
