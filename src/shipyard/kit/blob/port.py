"""The blob store port: content-addressed, immutable blobs shared across versions and repos."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path


class BlobNotFound(KeyError):
    """No blob with that digest is stored."""


class DigestMismatch(ValueError):
    """The bytes written do not hash to the digest they were put under; nothing was stored."""


@dataclass(frozen=True)
class StoredBlob:
    """One blob as the store lists it."""

    digest: str
    size: int
    modified: float  # seconds since the epoch: when it was put, or last touched


class BlobStore(abc.ABC):
    """Blobs keyed by their lowercase hex sha256 digest.

    ``put`` verifies the digest before the blob becomes visible, so a crashed or lying
    writer never leaves a blob whose content does not match its key.
    """

    @abc.abstractmethod
    async def open(self) -> None:
        """Prepare the store (create the directory or bucket)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    async def put(self, digest: str, chunks: AsyncIterator[bytes], size: int | None = None) -> int:
        """Store the bytes under ``digest``; return the size. Idempotent for existing blobs."""

    @abc.abstractmethod
    async def put_file(self, source: Path) -> tuple[str, int]:
        """Store the bytes of the file at ``source`` under the digest they hash to, reading the
        file once; return the digest and the size.

        The digest is that of the bytes stored, even if the file changes meanwhile: compare the
        file's stat before and after to tell.
        """

    async def put_files(self, sources: Sequence[Path], workers: int) -> list[tuple[str, int]]:
        """:meth:`put_file` for each of ``sources``, ``workers`` at a time; the digests and sizes in
        the order of ``sources``. The first failure is raised and the files not yet begun are not read."""
        limit = asyncio.Semaphore(workers)

        async def put(source: Path) -> tuple[str, int]:
            async with limit:
                return await self.put_file(source)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(put(source)) for source in sources]
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]

    @abc.abstractmethod
    def get(self, digest: str, offset: int = 0) -> AsyncIterator[bytes]:
        """Stream the blob's bytes from ``offset``; raises BlobNotFound."""

    @abc.abstractmethod
    async def exists(self, digest: str) -> bool:
        """Whether the blob is stored."""

    @abc.abstractmethod
    async def missing(self, digests: list[str]) -> list[str]:
        """The digests of ``digests`` that are not stored, in the given order."""

    @abc.abstractmethod
    async def size(self, digest: str) -> int:
        """The blob's size in bytes; raises BlobNotFound."""

    @abc.abstractmethod
    async def sync(self) -> None:
        """Make every blob put so far durable: one call after many puts (e.g. before a version
        that names them is committed), instead of a sync per blob."""

    @abc.abstractmethod
    async def delete(self, digest: str) -> bool:
        """Remove the blob; whether it existed."""

    async def quarantine(self, digest: str) -> bool:
        """Take a damaged blob out of service: it is no longer served or counted as stored, so the
        next put of the right bytes repairs it. Stores that can keep it aside for inspection do;
        this default removes it. Whether it was there."""
        return await self.delete(digest)

    @abc.abstractmethod
    def list_blobs(self) -> AsyncIterator[StoredBlob]:
        """Every stored blob with its size and when it was last put or touched, in no set order
        (the garbage collector's listing)."""

    @abc.abstractmethod
    async def touch(self, digests: list[str]) -> list[str]:
        """Mark the blobs as just used, so that a collection does not take them for the grace
        period: the client that asked about them is about to name them in a version. The digests
        of ``digests`` that are not stored (nothing to touch), in the given order."""

    @abc.abstractmethod
    async def delete_if_untouched(self, digest: str, before: float) -> bool:
        """Delete the blob only if it was last put or touched before ``before`` (epoch seconds);
        whether it was deleted. A touch that lands while this runs either keeps the blob or finds
        it gone (and says so): never a touch reported done on a deleted blob, where the store can
        promise it (see each adapter)."""
