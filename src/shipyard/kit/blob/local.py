"""Filesystem adapter of the blob store: one read-only file per blob under a root directory.

Layout: ``root/sha256/ab/cd/<digest>`` for blobs (two levels of fan-out keep directories
small) and ``root/tmp/`` for writes in progress. A blob becomes visible by an atomic rename
from ``tmp/``, only after its bytes hash to its digest, so readers never see a partial or
wrong blob; ``sync`` makes what was put durable (once per version, not once per blob).
``tmp/`` must be on the same filesystem as the blobs for that.

A blob's mtime is when it was last put or touched: the garbage collector deletes only blobs
untouched for its grace period, and moves a blob aside (``tmp/<digest>.collecting``) before its
last look at the mtime, so that a touch either lands before (the blob is put back) or finds the
blob gone. A blob left aside by a killed collector is put back when the store is next opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from shipyard.kit.blob.digest import (
    CHUNK_SIZE,
    check_digest,
    check_offset,
    check_stored_size,
    copy_file_hashed,
    copy_verified,
)
from shipyard.kit.blob.port import BlobNotFound, BlobStore, StoredBlob
from shipyard.kit.errors import out_of_space

# Blobs are hard-linked into run workspaces; read-only files stop a run from editing the
# store's copy through its link.
_BLOB_MODE = 0o444


def _seal(out: IO[bytes], temp: Path, final: Path) -> None:
    """Move the written temp file into place atomically.

    No fsync here: a killed process loses nothing the kernel has, and ``sync`` makes a whole
    version's blobs durable with one call before the version is committed.
    """
    out.close()
    os.chmod(temp, _BLOB_MODE)
    final.parent.mkdir(parents=True, exist_ok=True)
    # An existing blob has the same bytes, so replacing it is harmless and keeps puts idempotent.
    os.replace(temp, final)


def _syncfs(path: Path) -> None:
    """Flush the file system holding ``path`` (Linux syncfs; elsewhere, every file system)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _LIBC is None or _LIBC.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


_LIBC_NAME = ctypes.util.find_library("c")
_LIBC = ctypes.CDLL(_LIBC_NAME, use_errno=True) if _LIBC_NAME else None
_SYNC_FILE_RANGE_WRITE = 2
_sync_file_range = getattr(_LIBC, "sync_file_range", None)
if _sync_file_range is not None:
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


def _start_write_back(out: IO[bytes]) -> None:
    """Ask the kernel to start writing the file to disk now, without waiting (Linux
    sync_file_range): the disk works while the next files are hashed and copied, so the one
    ``sync`` before a version commits has little left to wait for (measured on 1 GiB: ~2 s of
    sync became ~0.5 s). Elsewhere, nothing: the sync does it all."""
    if _sync_file_range is not None:
        out.flush()
        _sync_file_range(out.fileno(), 0, 0, _SYNC_FILE_RANGE_WRITE)


def _discard(out: IO[bytes], temp: Path) -> None:
    """Close and remove an unfinished temp file."""
    out.close()
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _touch_size(path: str | Path) -> int | None:
    """Mark the blob as just used (its mtime: now); its size, or None when it is not stored."""
    try:
        os.utime(path)
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


_ASIDE = ".collecting"


def _put_back(aside: str, final: str) -> None:
    """Return a blob the collector moved aside. A put meanwhile stored the same bytes, fresher:
    that copy stays."""
    with contextlib.suppress(FileExistsError):
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.link(aside, final)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(aside)


def _listed(fanout: str) -> list[StoredBlob]:
    """The blobs under one first-level fan-out directory."""
    found = []
    for second in _entries(fanout):
        for entry in _entries(second):
            with contextlib.suppress(FileNotFoundError):
                stat = os.stat(entry)
                found.append(StoredBlob(os.path.basename(entry), stat.st_size, stat.st_mtime))
    return found


def _entries(directory: str) -> Iterator[str]:
    try:
        with os.scandir(directory) as entries:
            yield from sorted(e.path for e in entries)
    except (FileNotFoundError, NotADirectoryError):
        return


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _open_at(path: Path, offset: int) -> IO[bytes]:
    f = path.open("rb")
    f.seek(offset)
    return f


class LocalBlobStore(BlobStore):
    """Blobs as files under ``root``; safe for concurrent writers of the same blob."""

    def __init__(self, root: Path, durable: bool = True) -> None:
        self.root = Path(root)
        self.durable = durable  # False: ``sync`` leaves write-back to the OS
        self._blobs = self.root / "sha256"
        self._blobs_dir = str(self._blobs)
        self._tmp = self.root / "tmp"

    def path_of(self, digest: str) -> Path:
        """The file that holds (or would hold) the blob; raises ValueError for a bad digest."""
        return Path(self._file_of(digest))

    def _file_of(self, digest: str) -> str:
        # Plain strings: a version's check of 2,000 blobs spent 70 ms building Paths.
        check_digest(digest)
        return os.path.join(self._blobs_dir, digest[:2], digest[2:4], digest)

    async def open(self) -> None:
        """Create the blob and temp directories."""
        for path in (self._blobs, self._tmp):
            await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(self._put_back_all)

    def _put_back_all(self) -> None:
        """Blobs a killed collector left aside go back: it had not decided to delete them."""
        for aside in self._tmp.glob(f"*{_ASIDE}"):
            digest = aside.name.removesuffix(_ASIDE)
            with contextlib.suppress(ValueError):
                _put_back(str(aside), self._file_of(digest))

    async def close(self) -> None:
        """Nothing to release: every operation opens and closes its own files."""

    async def put(self, digest: str, chunks: AsyncIterator[bytes], size: int | None = None) -> int:
        """Store the bytes under ``digest`` unless already stored; return the size.

        Raises DigestMismatch, leaving nothing behind, when the bytes do not hash to
        ``digest`` or do not number ``size``.
        """
        final = self.path_of(digest)
        stored = await asyncio.to_thread(_touch_size, final)
        if stored is not None:
            return check_stored_size(digest, stored, size)
        try:
            out = await asyncio.to_thread(self._temp_file, digest)
        except OSError as exc:
            if full := out_of_space(exc, f"blob {digest} to the blob store"):
                raise full from exc
            raise
        temp = Path(out.name)
        try:
            written = await copy_verified(chunks, out, digest, size)
            if self.durable:
                await asyncio.to_thread(_start_write_back, out)
            await asyncio.to_thread(_seal, out, temp, final)
        except BaseException as exc:
            # Synchronous on purpose: it must also run when the task is being cancelled.
            _discard(out, temp)
            if full := out_of_space(exc, f"blob {digest} to the blob store"):
                raise full from exc
            raise
        return written

    def _temp_file(self, digest: str) -> IO[bytes]:
        return tempfile.NamedTemporaryFile(
            dir=self._tmp, prefix=f"{digest[:16]}-", suffix=".part", delete=False)

    async def put_file(self, source: Path) -> tuple[str, int]:
        """Copy the file into the store in one pass, hashing as it goes; its digest and size."""
        return await asyncio.to_thread(self._ingest, source)

    async def put_files(self, sources: Sequence[Path], workers: int) -> list[tuple[str, int]]:
        """Copy the files into the store on ``workers`` threads of one pool: no event-loop hop per
        file (measured: ~25 % faster than one ``put_file`` task per file on 2,000 files)."""
        return await asyncio.to_thread(self._ingest_all, list(sources), workers)

    def _ingest_all(self, sources: list[Path], workers: int) -> list[tuple[str, int]]:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shipyard-blobs") as pool:
            futures = [pool.submit(self._ingest, source) for source in sources]
            try:
                return [future.result() for future in futures]
            finally:
                for future in futures:
                    future.cancel()  # after a failure: the files not yet begun are left alone

    def _ingest(self, source: Path) -> tuple[str, int]:
        try:
            out = self._temp_file("file")
        except OSError as exc:
            if full := out_of_space(exc, f"{source} to the blob store"):
                raise full from exc
            raise
        temp = Path(out.name)
        try:
            digest, size = copy_file_hashed(source, out)
            final = self.path_of(digest)
            if _touch_size(final) is not None:
                _discard(out, temp)  # already stored: identical bytes
            else:
                if self.durable:
                    _start_write_back(out)
                _seal(out, temp, final)
        except BaseException as exc:
            _discard(out, temp)
            if full := out_of_space(exc, f"{source} to the blob store"):
                raise full from exc
            raise
        return digest, size

    def get(self, digest: str, offset: int = 0) -> AsyncIterator[bytes]:
        """Stream the blob from ``offset`` in chunks of up to 1 MiB; raises BlobNotFound.

        A bad digest or offset raises ValueError at once; a missing blob raises BlobNotFound
        on the first iteration.
        """
        return self._read(digest, self.path_of(digest), check_offset(offset))

    async def _read(self, digest: str, path: Path, offset: int) -> AsyncIterator[bytes]:
        try:
            f = await asyncio.to_thread(_open_at, path, offset)
        except FileNotFoundError:
            raise BlobNotFound(digest) from None
        try:
            while chunk := await asyncio.to_thread(f.read, CHUNK_SIZE):
                yield chunk
        finally:
            f.close()

    async def exists(self, digest: str) -> bool:
        """Whether the blob is stored."""
        return await asyncio.to_thread(self.path_of(digest).is_file)

    async def missing(self, digests: list[str]) -> list[str]:
        """The digests of ``digests`` that are not stored, in the given order."""
        paths = [self._file_of(digest) for digest in digests]
        present = await asyncio.to_thread(lambda: [os.path.isfile(path) for path in paths])
        return [digest for digest, ok in zip(digests, present, strict=True) if not ok]

    async def size(self, digest: str) -> int:
        """The blob's size in bytes; raises BlobNotFound."""
        stored = await asyncio.to_thread(_file_size, self.path_of(digest))
        if stored is None:
            raise BlobNotFound(digest)
        return stored

    async def sync(self) -> None:
        """Flush the blob store's file system: the blobs put so far survive a power loss.
        Nothing when the store is not ``durable``."""
        if self.durable:
            await asyncio.to_thread(_syncfs, self.root)

    async def delete(self, digest: str) -> bool:
        """Remove the blob; whether it existed. Hard links made from it keep their bytes."""
        return await asyncio.to_thread(_unlink, self.path_of(digest))

    async def quarantine(self, digest: str) -> bool:
        """Move the blob to ``quarantine/<digest>`` under the store's root, out of service."""
        return await asyncio.to_thread(self._move_aside, digest)

    def _move_aside(self, digest: str) -> bool:
        aside = self.root / "quarantine"
        aside.mkdir(exist_ok=True)
        try:
            os.replace(self.path_of(digest), aside / digest)
        except FileNotFoundError:
            return False
        return True

    async def list_blobs(self) -> AsyncIterator[StoredBlob]:
        """Every blob with its size and mtime, one fan-out directory at a time."""
        for fanout in await asyncio.to_thread(lambda: list(_entries(self._blobs_dir))):
            for blob in await asyncio.to_thread(_listed, fanout):
                yield blob

    async def touch(self, digests: list[str]) -> list[str]:
        """Set the blobs' mtime to now; those not stored, in the given order."""
        paths = [self._file_of(digest) for digest in digests]
        sizes = await asyncio.to_thread(lambda: [_touch_size(path) for path in paths])
        return [digest for digest, size in zip(digests, sizes, strict=True) if size is None]

    async def delete_if_untouched(self, digest: str, before: float) -> bool:
        """Move the blob aside, look at its mtime, then delete it or put it back: a touch before
        the move keeps it, a touch after finds it missing (and its version is refused)."""
        return await asyncio.to_thread(self._delete_if_untouched, digest, before)

    def _delete_if_untouched(self, digest: str, before: float) -> bool:
        final = self._file_of(digest)
        aside = os.path.join(self._tmp, digest + _ASIDE)
        try:
            os.rename(final, aside)
        except FileNotFoundError:
            return False
        try:
            touched = os.stat(aside).st_mtime
        except FileNotFoundError:
            return False  # another process opening the store put it back
        if touched < before:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(aside)
            return True
        _put_back(aside, final)
        return False
