"""The garbage collector on a real local blob store, composed with the version use cases as production
composes them (on the kit's in-memory store): what is
deleted, what is kept, the grace period, a version made while a collection runs, a killed sweep."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from repo_world import World, repo_world, settings
from shipyard_repo.adapters.store import BlobManifests
from shipyard_repo.app.garbage import GarbageCollector
from shipyard_repo.app.repos import Repos
from shipyard_repo.app.versions import NewVersion, Versions
from shipyard_repo.domain.repos import RepoFields
from shipyard_repo.domain.sources import RepoKind, UploadSource

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.blob.local import LocalBlobStore
from shipyard.kit.errors import FailedPrecondition, PermissionDenied
from shipyard.kit.events import new_event
from shipyard.kit.manifest import Manifest, ManifestEntry
from shipyard.kit.testing import ALICE, OPERATOR_CALLER

GRACE_S = 3600.0
NOW = time.time()  # the collector's clock; touches set the real time, which is never earlier
OLD = NOW - 2 * GRACE_S  # well past the grace period
DATASET = RepoKind.DATASET


@dataclass
class Wired:
    blobs: LocalBlobStore
    repos: Repos
    versions: Versions
    world: World
    gc: GarbageCollector

    async def put(self, data: bytes, when: float = OLD) -> str:
        """Store the bytes as a blob last used at ``when``."""
        digest = hashlib.sha256(data).hexdigest()
        await self.blobs.put(digest, _once(data), len(data))
        os.utime(self.blobs.path_of(digest), (when, when))
        return digest

    async def put_manifest(self, when: float = OLD, **files: bytes) -> str:
        """Store the files and their manifest, all last used at ``when``; the manifest's digest."""
        entries = []
        for name, data in files.items():
            entries.append(ManifestEntry(name, len(data), await self.put(data, when), 0o644))
        manifest = Manifest(tuple(entries))
        assert await self.put(manifest.encode(), when) == manifest.digest
        return manifest.digest

    def stored(self) -> set[str]:
        return {p.name for p in (self.blobs.root / "sha256").glob("*/*/*")}


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
async def wired(tmp_path: Path) -> Wired:
    blobs = LocalBlobStore(tmp_path / "blobs", durable=False)
    await blobs.open()
    world = await repo_world(tmp_path, settings(tmp_path, gc_grace_s=GRACE_S), blobs=blobs,
                             manifests=BlobManifests(blobs), seconds=lambda: NOW)
    repos, versions, gc = world.app.repos, world.app.versions, world.app.garbage
    await repos.create(ALICE, RepoFields(kind=DATASET, name="digits", source=UploadSource("d.zip")))
    await repos.create(ALICE, RepoFields(kind=DATASET, name="fonts", source=UploadSource("f.zip")))
    return Wired(blobs, repos, versions, world, gc)


async def _version(wired: Wired, repo: str, manifest: str) -> int:
    """A version made as a client makes it; then its blobs are made old again."""
    _, version = await wired.versions.create(ALICE, DATASET, repo, NewVersion(manifest))
    for path in (wired.blobs.root / "sha256").glob("*/*/*"):
        os.utime(path, (OLD, OLD))
    return version.number


async def test_unreferenced_old_blobs_go_referenced_and_recent_ones_stay(wired: Wired) -> None:
    manifest = await wired.put_manifest(a=b"kept", b=b"also kept")
    await _version(wired, "digits", manifest)
    garbage = await wired.put(b"nobody names me")
    uploading = await wired.put(b"a push in flight", when=NOW - GRACE_S / 2)

    done = await wired.gc.collect()

    assert garbage not in wired.stored()
    assert {manifest, uploading} <= wired.stored()
    assert (done.deleted_blobs, done.deleted_bytes) == (1, len(b"nobody names me"))
    assert (done.referenced_blobs, done.recent_blobs) == (3, 1)
    again = await wired.gc.collect()  # idempotent: nothing more to do
    assert (again.deleted_blobs, again.referenced_blobs, again.recent_blobs) == (0, 3, 1)


async def test_a_dry_run_deletes_nothing_and_says_what_it_would(wired: Wired) -> None:
    garbage = await wired.put(b"garbage")
    done = await wired.gc.collect(dry_run=True)
    assert done.dry_run and done.deleted_blobs == 1
    assert garbage in wired.stored()


async def test_deleting_a_version_frees_only_what_no_other_version_names(wired: Wired) -> None:
    first = await wired.put_manifest(shared=b"in both", mine=b"only in digits")
    second = await wired.put_manifest(shared=b"in both", theirs=b"only in fonts")
    await _version(wired, "digits", first)
    await _version(wired, "fonts", second)
    await wired.versions.delete(ALICE, DATASET, "digits", 1)

    await wired.gc.collect()

    unique = hashlib.sha256(b"only in digits").hexdigest()
    shared = hashlib.sha256(b"in both").hexdigest()
    assert unique not in wired.stored() and first not in wired.stored()
    assert {shared, second, hashlib.sha256(b"only in fonts").hexdigest()} <= wired.stored()


async def test_a_deleted_repo_frees_its_versions(wired: Wired) -> None:
    manifest = await wired.put_manifest(a=b"digits only")
    await _version(wired, "digits", manifest)
    await wired.repos.delete(ALICE, DATASET, "digits")
    assert (await wired.gc.collect()).deleted_blobs == 2
    assert wired.stored() == set()


async def test_a_version_made_between_mark_and_sweep_keeps_the_old_blobs_it_names(wired: Wired) -> None:
    # An old blob nothing references: garbage when the collection marks.
    manifest = await wired.put_manifest(a=b"old bytes, about to be named")
    referenced = await wired.gc.mark()
    assert manifest not in referenced

    # The client asks which blobs are missing (none), and makes its version: both touch.
    assert await wired.versions.find_missing([manifest]) == []
    await wired.versions.create(ALICE, DATASET, "digits", NewVersion(manifest))

    done = await wired.gc.sweep(referenced, NOW - GRACE_S, dry_run=False)
    assert done.deleted_blobs == 0 and done.recent_blobs == 2
    _, version = await wired.versions.get(DATASET, "digits", 1)
    assert len((await wired.versions.read_manifest(version.manifest_digest)).entries) == 1
    assert await wired.blobs.missing(
        [manifest, hashlib.sha256(b"old bytes, about to be named").hexdigest()]) == []


async def test_a_version_made_after_the_sweep_took_its_blob_is_refused_not_broken(wired: Wired) -> None:
    manifest = await wired.put_manifest(a=b"collected first")
    referenced = await wired.gc.mark()
    await wired.gc.sweep(referenced, NOW - GRACE_S, dry_run=False)

    with pytest.raises(FailedPrecondition, match="upload it"):
        await wired.versions.create(ALICE, DATASET, "digits", NewVersion(manifest))
    assert await wired.world.documents("versions") == []


async def test_a_blob_touched_after_it_was_listed_is_kept(wired: Wired) -> None:
    blob = await wired.put(b"listed old, touched before its delete")
    assert not await wired.blobs.delete_if_untouched(blob, OLD - 1)  # used after "before": kept
    await wired.blobs.touch([blob])
    assert not await wired.blobs.delete_if_untouched(blob, NOW - GRACE_S)
    assert blob in wired.stored()


async def test_a_sweep_killed_with_a_blob_aside_loses_nothing(wired: Wired, tmp_path: Path) -> None:
    manifest = await wired.put_manifest(a=b"referenced")
    await _version(wired, "digits", manifest)
    entry = hashlib.sha256(b"referenced").hexdigest()
    # kill -9 between moving a blob aside and deciding about it:
    os.rename(wired.blobs.path_of(entry), wired.blobs.root / "tmp" / f"{entry}.collecting")
    garbage = await wired.put(b"garbage")

    restarted = LocalBlobStore(wired.blobs.root, durable=False)
    await restarted.open()  # puts it back
    wired.gc.blobs = restarted
    done = await wired.gc.collect()

    assert entry in wired.stored() and garbage not in wired.stored()
    assert done.deleted_blobs == 1
    assert list((wired.blobs.root / "tmp").iterdir()) == []


async def test_code_snapshots_of_existing_code_repos_are_kept(wired: Wired) -> None:
    kept = await wired.put_manifest(a=b"print('kept')")
    gone = await wired.put_manifest(a=b"print('gone')")
    repo_id = (await wired.world.documents("repos"))[0]["_id"]
    await wired.world.write(lambda uow: uow.requests.remember(f"code:{repo_id}:{'a' * 40}", kept))
    # Its repo was deleted:
    await wired.world.write(lambda uow: uow.requests.remember(f"code:repo-0999:{'b' * 40}", gone))
    await wired.gc.collect()
    assert kept in wired.stored() and gone not in wired.stored()


async def test_only_operators_collect(wired: Wired) -> None:
    garbage = await wired.put(b"garbage")
    with pytest.raises(PermissionDenied, match="only operators"):
        await wired.gc.collect_for(ALICE, dry_run=False)
    assert garbage in wired.stored()
    assert (await wired.gc.collect_for(OPERATOR_CALLER, dry_run=False)).deleted_blobs == 1


# --- runs' artifacts ----------------------------------------------------------------------


async def _run_event(wired: Wired, data: events_pb2.RunArtifactsLogged | events_pb2.RunDeleted) -> None:
    """A run event as repo-svc's consumer hands it over."""
    await wired.world.app.run_events.apply([new_event(data, source="run-svc", subject=f"runs/{data.run_id}")])


def _make_old(wired: Wired) -> None:
    for path in (wired.blobs.root / "sha256").glob("*/*/*"):
        os.utime(path, (OLD, OLD))


async def test_a_blob_only_a_runs_artifacts_name_stays_until_the_run_is_deleted(wired: Wired) -> None:
    plot = await wired.put(b"confusion.png")
    other = await wired.put(b"another run's model.pkl")
    garbage = await wired.put(b"nobody names me")
    await _run_event(wired, events_pb2.RunArtifactsLogged(run_id="run-1", digests=[plot, plot]))
    await _run_event(wired, events_pb2.RunArtifactsLogged(run_id="run-2", digests=[other]))
    _make_old(wired)  # past the grace period: only the record keeps them

    done = await wired.gc.collect()

    assert {plot, other} <= wired.stored() and garbage not in wired.stored()
    assert (done.referenced_blobs, done.deleted_blobs) == (2, 1)

    await _run_event(wired, events_pb2.RunDeleted(run_id="run-1"))
    done = await wired.gc.collect()

    assert plot not in wired.stored() and other in wired.stored()
    assert (done.referenced_blobs, done.deleted_blobs) == (1, 1)


async def test_a_run_artifact_a_version_also_names_stays_after_the_run_is_deleted(wired: Wired) -> None:
    manifest = await wired.put_manifest(model=b"registered weights")
    weights = hashlib.sha256(b"registered weights").hexdigest()
    await _run_event(wired, events_pb2.RunArtifactsLogged(run_id="run-1", digests=[weights]))
    await _version(wired, "digits", manifest)
    await _run_event(wired, events_pb2.RunDeleted(run_id="run-1"))
    _make_old(wired)
    assert (await wired.gc.collect()).deleted_blobs == 0
    assert {manifest, weights} <= wired.stored()


async def test_artifacts_recorded_between_mark_and_sweep_are_kept(wired: Wired) -> None:
    plot = await wired.put(b"an old blob a run logs again")
    referenced = await wired.gc.mark()
    assert plot not in referenced

    # The event touches the blob before it records it: the sweep finds it used since its cutoff.
    await _run_event(wired, events_pb2.RunArtifactsLogged(run_id="run-1", digests=[plot]))

    done = await wired.gc.sweep(referenced, NOW - GRACE_S, dry_run=False)
    assert (done.deleted_blobs, done.recent_blobs) == (0, 1)
    assert plot in wired.stored()
