"""The quota on pending uploads, on the real store adapter (SQLite): reserved, refused past the
limit, settled by a version that names the blobs, aged out after the grace period; and the blob
references the garbage collector reads from the same store."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from repo_world import repo_world
from shipyard_repo.adapters import store as store_adapter
from shipyard_repo.adapters.store import COLLECTIONS, StoredBlobReferences, StoredUploads
from shipyard_repo.app.uploads import UploadQuota
from shipyard_repo.app.versions import NewVersion
from shipyard_repo.domain.repos import RepoFields
from shipyard_repo.domain.sources import GitSource, RepoKind, UploadSource, Versioning

from shipyard.kit.errors import InvalidArgument, ResourceExhausted
from shipyard.kit.manifest import Manifest, ManifestEntry
from shipyard.kit.store.sqlite import SQLiteDocumentStore
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER, FixedSeconds, sqlite_store

GRACE_S = 100.0
LIMIT = 1000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteDocumentStore]:
    async with sqlite_store(tmp_path / "x.db", COLLECTIONS) as store:
        yield store


async def test_uploads_past_the_limit_are_refused_and_recorded_nowhere(store: SQLiteDocumentStore) -> None:
    ledger, clock = StoredUploads(store), FixedSeconds(1_000_000.0)
    quota = UploadQuota(ledger, LIMIT, GRACE_S, clock)
    assert (await quota.reserve(ALICE, sha(b"1"), 600)).pending_bytes == 600
    assert (await quota.reserve(ALICE, sha(b"1"), 600)).pending_bytes == 600  # the same blob again
    with pytest.raises(ResourceExhausted, match="alice has 600 bytes of uploads that no version names"):
        await quota.reserve(ALICE, sha(b"2"), 401)
    assert [u.digest for u in await ledger.pending("alice", 0)] == [sha(b"1")]
    assert (await quota.reserve(BOB, sha(b"2"), 401)).pending_bytes == 401  # bob's own quota
    assert (await quota.reserve(OPERATOR_CALLER, sha(b"3"), 10 * LIMIT)).limit_bytes == 0  # operators: none


async def test_pending_uploads_age_out_after_the_grace_period(store: SQLiteDocumentStore) -> None:
    ledger, clock = StoredUploads(store), FixedSeconds(1_000_000.0)
    quota = UploadQuota(ledger, LIMIT, GRACE_S, clock)
    await quota.reserve(ALICE, sha(b"1"), LIMIT)
    clock.now += GRACE_S + 1  # collected by now, or named by a version
    assert (await quota.reserve(ALICE, sha(b"2"), LIMIT)).pending_bytes == LIMIT
    assert await ledger.forget_before(clock.now - GRACE_S) == 1
    assert [u.digest for u in await ledger.pending("alice", 0)] == [sha(b"2")]


async def test_bad_reservations_are_invalid(store: SQLiteDocumentStore) -> None:
    quota = UploadQuota(StoredUploads(store), LIMIT, GRACE_S, FixedSeconds(1_000_000.0))
    with pytest.raises(InvalidArgument, match="digest"):
        await quota.reserve(ALICE, "nope", 1)
    with pytest.raises(InvalidArgument, match="size_bytes"):
        await quota.reserve(ALICE, sha(b"1"), -1)


async def test_a_version_naming_the_uploads_settles_them(tmp_path: Path, store: SQLiteDocumentStore) -> None:
    ledger, clock = StoredUploads(store), FixedSeconds(1_000_000.0)
    quota = UploadQuota(ledger, LIMIT, GRACE_S, clock)
    world = await repo_world(tmp_path, store=store, uploads=ledger)
    repos, versions, manifests = world.app.repos, world.app.versions, world.manifests
    await repos.create(ALICE, RepoFields(kind=RepoKind.DATASET, name="digits", source=UploadSource("d.zip")))
    manifest = Manifest((ManifestEntry("a", 900, sha(b"a"), 0o644),))
    await quota.reserve(ALICE, sha(b"a"), 900)
    await quota.reserve(ALICE, manifest.digest, 50)
    with pytest.raises(ResourceExhausted):
        await quota.reserve(ALICE, sha(b"next"), 900)

    await versions.create(ALICE, RepoKind.DATASET, "digits", NewVersion(manifests.upload(manifest)))

    assert await ledger.pending("alice", 0) == []
    assert (await quota.reserve(ALICE, sha(b"next"), 900)).pending_bytes == 900


async def test_references_are_versions_and_code_snapshots_of_existing_repos(
        tmp_path: Path, store: SQLiteDocumentStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_adapter, "_BATCH", 1)  # read a page at a time
    world = await repo_world(tmp_path, store=store)
    repos, versions, manifests, uow = world.app.repos, world.app.versions, world.manifests, world.units
    await repos.create(ALICE, RepoFields(kind=RepoKind.DATASET, name="digits", source=UploadSource("d.zip")))
    code = await repos.create(ALICE, RepoFields(kind=RepoKind.CODE, name="train",
                                                source=GitSource("https://example.com/t.git"),
                                                versioning=Versioning.NONE))
    version_manifest = manifests.upload(Manifest((ManifestEntry("a", 1, sha(b"a"), 0o644),)))
    await versions.create(ALICE, RepoKind.DATASET, "digits", NewVersion(version_manifest))
    second = manifests.upload(Manifest((ManifestEntry("b", 1, sha(b"b"), 0o644),)))
    await versions.create(ALICE, RepoKind.DATASET, "digits", NewVersion(second))
    async with uow() as txn:
        await txn.requests.remember(f"code:{code.id}:{'a' * 40}", sha(b"snapshot"))
        await txn.requests.remember(f"code:repo-gone:{'b' * 40}", sha(b"of a deleted repo"))
        await txn.requests.remember("alice:version:r1", "not a digest: another kind of request")

    found = await StoredBlobReferences(store).manifest_digests()
    assert found == {version_manifest, second, sha(b"snapshot")}
