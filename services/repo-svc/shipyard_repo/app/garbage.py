"""Collecting garbage: blobs that nothing references, untouched for a grace period, are deleted.

Mark: every manifest repo-svc's records name (versions, code snapshots), every blob those
manifests name, and every blob a run not yet deleted stored as an artifact. Sweep: each stored
blob outside that set and last put or touched before the cutoff (the collection's start minus the
grace period) is deleted — by the store's ``delete_if_untouched``, which looks at the blob's time
once more as it deletes.

Why that is safe against a version made meanwhile: a version is committed only after its
manifest and every blob it names were touched (``Versions.create``), and a client's
``FindMissingBlobs`` touches the blobs it will not upload. So a blob a new version names either
was touched after the cutoff (the sweep keeps it), or was already gone when touched (the version
is refused, naming the blob to upload again). A run's artifacts are recorded the same way
(touched, then recorded: app/run_events.py). Blobs still being uploaded, staged by a run whose
version repo-svc has not made yet, or stored as artifacts of a run whose event repo-svc has not
handled yet, are younger than the grace period.

Nothing is written before deleting, so a collection killed at any point loses nothing referenced
and the next one simply starts over. Two replicas collecting at once do the same work twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.kit.blob.port import BlobStore
from shipyard.kit.caller import Caller
from shipyard.kit.errors import InvalidArgument, NotFound, PermissionDenied
from shipyard_repo.app.ports import BlobReferences, ManifestStore, UploadLedger
from shipyard_repo.domain.versions import EMPTY_MANIFEST

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Collected:
    """What one collection found: blobs (and their bytes) deleted, referenced, and unreferenced
    but kept because they are younger than the grace period (or were touched as it ran)."""

    dry_run: bool
    deleted_blobs: int = 0
    deleted_bytes: int = 0
    referenced_blobs: int = 0
    referenced_bytes: int = 0
    recent_blobs: int = 0
    recent_bytes: int = 0


@dataclass
class _Tally:
    counts: dict[str, list[int]] = field(default_factory=lambda: {
        "deleted": [0, 0], "referenced": [0, 0], "recent": [0, 0]})

    def add(self, what: str, size: int) -> None:
        self.counts[what][0] += 1
        self.counts[what][1] += size

    def result(self, dry_run: bool) -> Collected:
        c = self.counts
        return Collected(dry_run, *c["deleted"], *c["referenced"], *c["recent"])


@dataclass
class GarbageCollector:
    """Marks what repo-svc references and sweeps the rest of the blob store."""

    references: BlobReferences
    manifests: ManifestStore
    blobs: BlobStore
    grace_s: float
    uploads: UploadLedger | None = None
    clock: Callable[[], float] = time.time
    hold: Path | None = None  # failpoint gc.hold: after each delete, wait while this file exists
    _running: asyncio.Lock = field(default_factory=asyncio.Lock)
    _asked: set[asyncio.Task[Collected]] = field(default_factory=set)

    async def collect_for(self, caller: Caller, dry_run: bool) -> Collected:
        """:meth:`collect` on an operator's request; PermissionDenied for anyone else. A request
        that gives up (its deadline) leaves the collection running to its end."""
        if not caller.is_operator:
            raise PermissionDenied("only operators may collect garbage")
        task = asyncio.ensure_future(self.collect(dry_run))
        self._asked.add(task)
        task.add_done_callback(self._asked.discard)
        return await asyncio.shield(task)

    async def collect(self, dry_run: bool = False) -> Collected:
        """One collection (one at a time in this process); ``dry_run`` deletes nothing and
        reports what would be deleted."""
        async with self._running:
            cutoff = self.clock() - self.grace_s
            referenced = await self.mark()
            collected = await self.sweep(referenced, cutoff, dry_run)
            if self.uploads is not None and not dry_run:
                await self.uploads.forget_before(cutoff)
        log.info("garbage collection%s: %s", " (dry run)" if dry_run else "", collected)
        return collected

    async def mark(self) -> set[str]:
        """Every digest a version or a code snapshot needs (the manifests and their blobs), and
        every run's artifacts."""
        referenced = await self.references.artifact_digests()
        for digest in await self.references.manifest_digests():
            referenced.add(digest)
            if digest == EMPTY_MANIFEST:
                continue
            try:
                manifest = await self.manifests.read(digest)
            except (NotFound, InvalidArgument) as exc:
                # That version is unreadable already; its files cannot be told from garbage.
                log.warning("garbage collection: manifest %s: %s", digest, exc.message)
                continue
            referenced.update(manifest.blobs())
        return referenced

    async def sweep(self, referenced: set[str], cutoff: float, dry_run: bool) -> Collected:
        """Delete (or count) every blob outside ``referenced`` last used before ``cutoff``."""
        tally = _Tally()
        async for blob in self.blobs.list_blobs():
            if blob.digest in referenced:
                tally.add("referenced", blob.size)
            elif blob.modified >= cutoff:
                tally.add("recent", blob.size)
            elif dry_run or await self.blobs.delete_if_untouched(blob.digest, cutoff):
                tally.add("deleted", blob.size)
                await self._held()
            else:
                tally.add("recent", blob.size)  # touched, or put again, since it was listed
        return tally.result(dry_run)

    async def _held(self) -> None:
        """Tests stop a sweep midway (to kill it there) with the gc.hold failpoint."""
        while True:
            if self.hold is None or not self.hold.exists():
                return
            await asyncio.sleep(0.05)  # a file, not an event: the test is another process

    async def run_forever(self, interval_s: float) -> None:
        """Collect every ``interval_s`` seconds, the first time one interval after start; a failed
        collection is logged and the next one tried on time."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.collect()
            except Exception:
                log.exception("garbage collection failed; trying again in %.0f s", interval_s)
