"""The repo and version use cases (app/repos.py, app/versions.py), composed as production composes
them, on the real store adapters in the kit's in-memory store."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from repo_fakes import FakeManifests
from repo_world import World, repo_world
from shipyard_repo.app.ports import RepoFilter
from shipyard_repo.app.repos import Repos
from shipyard_repo.app.versions import NewVersion, Versions
from shipyard_repo.domain.projects import ProjectFields
from shipyard_repo.domain.repos import RepoFields, RepoStatus
from shipyard_repo.domain.sources import (
    GitSource,
    HostPathSource,
    NoSource,
    RepoKind,
    UploadSource,
    Versioning,
)
from shipyard_repo.domain.versions import EMPTY_MANIFEST

from shipyard.contracts.events.v1 import events_pb2
from shipyard.kit.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from shipyard.kit.manifest import Manifest, ManifestEntry
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER

DATASET = RepoKind.DATASET
Wired = tuple[Repos, Versions, World, FakeManifests]


@pytest.fixture
async def wired(tmp_path: Path) -> Wired:
    world = await repo_world(tmp_path)
    return world.app.repos, world.app.versions, world, world.manifests


def _manifest(**files: bytes) -> Manifest:
    return Manifest(
        tuple(
            ManifestEntry(path.replace("__", "/"), len(data), hashlib.sha256(data).hexdigest(), 0o644)
            for path, data in files.items()
        )
    )


def _types(world: World) -> list[str]:
    return world.units.message_names()


async def _dataset(repos: Repos, name: str = "digits", **extra: Any) -> None:
    await repos.create(ALICE, RepoFields(kind=DATASET, name=name, source=UploadSource("d.zip"), **extra))


# --- repos -------------------------------------------------------------------------------


async def test_a_placeholder_dataset_gets_an_empty_version_1(wired: Wired) -> None:
    repos, versions, world, _ = wired
    repo = await repos.create(ALICE, RepoFields(kind=DATASET, name="out", source=NoSource()))

    assert (repo.latest_version, repo.status, repo.owner) == (1, RepoStatus.READY, "alice")
    _, first = await versions.get(DATASET, "out", 0)
    assert (first.number, first.manifest_digest, first.file_count) == (1, EMPTY_MANIFEST, 0)
    assert _types(world) == ["RepoCreated", "VersionCreated"]
    created = world.units.published[0]
    assert created.subject == "datasets/out"


async def test_an_upload_dataset_waits_for_its_first_version(wired: Wired) -> None:
    repos, _, world, _ = wired
    repo = await repos.create(ALICE, RepoFields(kind=DATASET, name="digits", source=UploadSource("d.zip")))
    assert (repo.latest_version, repo.status) == (0, RepoStatus.UPLOADING)
    assert _types(world) == ["RepoCreated"]


async def test_names_are_unique_per_kind(wired: Wired) -> None:
    repos, _, world, _ = wired
    await _dataset(repos, "mnist")
    with pytest.raises(AlreadyExists, match="dataset named 'mnist'"):
        await _dataset(repos, "mnist")
    await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="mnist", source=NoSource()))
    assert len(await world.documents("repos")) == 2


async def test_a_repo_in_a_missing_project_is_not_found_and_nothing_is_stored(wired: Wired) -> None:
    repos, _, world, _ = wired
    with pytest.raises(NotFound, match="project 'vision' not found"):
        await _dataset(repos, project="vision")
    assert await world.documents("repos") == [] and world.units.published == []


async def test_a_repo_in_an_existing_project(wired: Wired) -> None:
    repos, _, world, _ = wired
    await _project(world, "vision")
    await _dataset(repos, project="vision")
    assert (await repos.get(DATASET, "digits")).project == "vision"


async def _project(world: World, name: str) -> None:
    await world.app.projects.create(ALICE, ProjectFields(name=name))


async def test_code_repos_take_git_and_are_never_dvs_versioned(wired: Wired) -> None:
    repos, _, _, _ = wired
    code = await repos.create(
        ALICE,
        RepoFields(
            kind=RepoKind.CODE,
            name="train",
            versioning=Versioning.NONE,
            source=GitSource(url="https://github.com/o/train.git"),
        ),
    )
    assert code.source == GitSource(url="https://github.com/o/train.git")
    assert code.status is RepoStatus.READY  # never imported: runs clone it at their pinned commit
    with pytest.raises(InvalidArgument, match=r"repo\.versioning: code repos are versioned by git"):
        await repos.create(
            ALICE,
            RepoFields(
                kind=RepoKind.CODE,
                name="dvs",
                versioning=Versioning.DVS,
                source=GitSource(url="https://github.com/o/train.git"),
            ),
        )


@pytest.mark.parametrize("name", ["", "a/b", "x" * 64, "bell\x07"])
async def test_bad_names_are_invalid(wired: Wired, name: str) -> None:
    repos, _, world, _ = wired
    with pytest.raises(InvalidArgument, match=r"repo\.name"):
        await _dataset(repos, name)
    assert await world.documents("repos") == []


async def test_list_filters_and_pages(wired: Wired) -> None:
    repos, _, world, _ = wired
    await _project(world, "vision")
    for index in range(5):
        await _dataset(
            repos, f"d{index}", project="vision" if index % 2 else "", tags=("raw",) if index < 2 else ()
        )
    await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="d-model", source=NoSource()))

    async def names(where: RepoFilter, size: int = 2) -> list[str]:
        found, token = [], ""
        while True:
            page, token = await repos.list_page(where, size, token)
            found += [r.name for r in page]
            if not token:
                return found

    assert await names(RepoFilter(kind=DATASET)) == ["d0", "d1", "d2", "d3", "d4"]
    assert await names(RepoFilter(kind=DATASET, project="vision")) == ["d1", "d3"]
    assert await names(RepoFilter(kind=DATASET, project="")) == ["d0", "d2", "d4"]
    assert await names(RepoFilter(tag="raw")) == ["d0", "d1"]
    assert await names(RepoFilter(name_prefix="d-")) == ["d-model"]
    with pytest.raises(InvalidArgument, match="page_token"):
        await repos.list_page(RepoFilter(), 2, "bogus")


async def test_move_rename_and_tag(wired: Wired) -> None:
    repos, _, world, _ = wired
    await _project(world, "vision")
    await _dataset(repos)
    moved = await repos.update(
        ALICE, DATASET, "digits", RepoFields(kind=DATASET, project="vision"), ["project"]
    )
    assert moved.project == "vision"
    event = world.units.published[-1].data
    assert isinstance(event, events_pb2.RepoUpdated)
    assert (list(event.changed_fields), event.previous_project) == (["project"], "")
    renamed = await repos.update(
        ALICE,
        DATASET,
        "digits",
        RepoFields(kind=DATASET, name="digits2", tags=("a", "a", "b")),
        ["name", "tags"],
    )
    assert (renamed.name, renamed.tags) == ("digits2", ("a", "b"))
    with pytest.raises(NotFound, match="project 'nope'"):
        await repos.update(ALICE, DATASET, "digits2", RepoFields(kind=DATASET, project="nope"), ["project"])
    with pytest.raises(InvalidArgument, match="update_mask"):
        await repos.update(ALICE, DATASET, "digits2", RepoFields(kind=DATASET), ["source"])


async def test_only_the_owner_or_an_operator_changes_a_repo(wired: Wired) -> None:
    repos, _, _, _ = wired
    await _dataset(repos)
    with pytest.raises(PermissionDenied, match="belongs to 'alice'"):
        await repos.delete(BOB, DATASET, "digits")
    await repos.delete(OPERATOR_CALLER, DATASET, "digits")


async def test_delete_removes_the_versions_and_says_so(wired: Wired) -> None:
    repos, versions, world, _ = wired
    await repos.create(ALICE, RepoFields(kind=DATASET, name="out", source=NoSource()))
    await repos.delete(ALICE, DATASET, "out")
    assert await world.documents("versions") == [] and await world.documents("repos") == []
    assert _types(world)[-1] == "RepoDeleted"
    with pytest.raises(NotFound):
        await versions.get(DATASET, "out", 1)


async def test_a_retried_create_returns_the_first_repo(wired: Wired) -> None:
    repos, _, world, _ = wired
    fields = RepoFields(kind=DATASET, name="digits", source=NoSource())
    first = await repos.create(ALICE, fields, request_id="r1")
    assert await repos.create(ALICE, fields, request_id="r1") == first
    assert _types(world) == ["RepoCreated", "VersionCreated"]


# --- versions ----------------------------------------------------------------------------


async def test_a_version_from_stored_blobs(wired: Wired) -> None:
    repos, versions, world, manifests = wired
    await _dataset(repos)
    digest = manifests.upload(_manifest(a=b"1", b__c=b"22"))
    repo, version = await versions.create(ALICE, DATASET, "digits", NewVersion(digest, message="first"))
    assert (version.number, version.size_bytes, version.file_count) == (1, 3, 2)
    assert (repo.latest_version, repo.status) == (1, RepoStatus.READY)
    assert manifests.syncs == 1  # the blobs were made durable before the version committed
    event = world.units.published[-1].data
    assert isinstance(event, events_pb2.VersionCreated)
    assert (event.version, event.manifest_digest, event.repo_kind) == (1, digest, "dataset")


async def test_missing_blobs_refuse_the_version_and_change_nothing(wired: Wired) -> None:
    repos, versions, world, manifests = wired
    await _dataset(repos)
    manifest = _manifest(a=b"1", b=b"2")
    digest = manifests.upload(manifest)
    manifests.blobs.discard(manifest.entries[1].sha256)
    assert await versions.find_missing([manifest.entries[0].sha256, manifest.entries[1].sha256]) == [
        manifest.entries[1].sha256
    ]
    with pytest.raises(FailedPrecondition, match="1 of the manifest's 2 blobs are not stored"):
        await versions.create(ALICE, DATASET, "digits", NewVersion(digest))
    with pytest.raises(FailedPrecondition, match="is not stored: upload it"):
        await versions.create(ALICE, DATASET, "digits", NewVersion("f" * 64))
    assert await world.documents("versions") == [] and _types(world) == ["RepoCreated"]


@pytest.mark.parametrize("digest", ["", "abc", "F" * 64, "g" * 64])
async def test_bad_digests_are_invalid(wired: Wired, digest: str) -> None:
    repos, versions, _, _ = wired
    await _dataset(repos)
    with pytest.raises(InvalidArgument, match="manifest_digest"):
        await versions.create(ALICE, DATASET, "digits", NewVersion(digest))
    with pytest.raises(InvalidArgument, match=r"digests\[0\]"):
        await versions.find_missing([digest])


async def test_two_writers_get_two_versions_or_one_clean_conflict(wired: Wired) -> None:
    repos, versions, _, manifests = wired
    await _dataset(repos)
    one, two = manifests.upload(_manifest(a=b"1")), manifests.upload(_manifest(a=b"2"))
    results = await asyncio.gather(
        versions.create(ALICE, DATASET, "digits", NewVersion(one)),
        versions.create(ALICE, DATASET, "digits", NewVersion(two)),
    )
    assert sorted(v.number for _, v in results) == [1, 2]
    await versions.create(ALICE, DATASET, "digits", NewVersion(one, parent_version=2))
    with pytest.raises(Aborted, match="is at version 3, not 2"):
        await versions.create(ALICE, DATASET, "digits", NewVersion(two, parent_version=2))


async def test_only_the_owner_or_an_operator_writes_a_version(wired: Wired) -> None:
    repos, versions, _, manifests = wired
    await _dataset(repos)
    digest = manifests.upload(_manifest(a=b"1"))
    with pytest.raises(PermissionDenied, match="dataset 'digits' belongs to 'alice'; only its owner or an "
                                               "operator may write its versions"):
        await versions.create(BOB, DATASET, "digits", NewVersion(digest))
    assert (await versions.create(OPERATOR_CALLER, DATASET, "digits", NewVersion(digest)))[1].number == 1


async def test_check_write_answers_for_a_runs_output_before_it_runs(wired: Wired) -> None:
    repos, versions, _, _ = wired
    await _dataset(repos)
    await repos.create(ALICE, RepoFields(kind=DATASET, name="logs", versioning=Versioning.NONE,
                                         source=HostPathSource("/data/logs")))
    repo = await versions.check_write(ALICE, DATASET, "digits")
    assert (repo.name, repo.owner) == ("digits", "alice")
    assert (await versions.check_write(OPERATOR_CALLER, DATASET, "digits")).id == repo.id
    with pytest.raises(PermissionDenied, match="dataset 'digits' belongs to 'alice'"):
        await versions.check_write(BOB, DATASET, "digits")
    with pytest.raises(FailedPrecondition, match="'logs' is not versioned"):
        await versions.check_write(ALICE, DATASET, "logs")
    with pytest.raises(NotFound, match="dataset 'ghost' not found"):
        await versions.check_write(ALICE, DATASET, "ghost")


async def test_referenced_repos_have_no_versions(wired: Wired) -> None:
    repos, versions, _, manifests = wired
    await repos.create(
        ALICE,
        RepoFields(
            kind=DATASET, name="logs", versioning=Versioning.NONE, source=HostPathSource("/data/logs")
        ),
    )
    with pytest.raises(FailedPrecondition, match="not versioned"):
        await versions.create(ALICE, DATASET, "logs", NewVersion(manifests.upload(_manifest(a=b"1"))))


async def test_list_files_compare_and_delete(wired: Wired) -> None:
    repos, versions, world, manifests = wired
    await _dataset(repos)
    first = manifests.upload(_manifest(a=b"1", b=b"2", c=b"3"))
    second = manifests.upload(_manifest(a=b"1", b=b"changed", d=b"4"))
    await versions.create(ALICE, DATASET, "digits", NewVersion(first))
    await versions.create(ALICE, DATASET, "digits", NewVersion(second))

    page, token = await versions.list_files(DATASET, "digits", 1, "", 2, "")
    rest, end = await versions.list_files(DATASET, "digits", 1, "", 2, token)
    assert [e.path for e in page + rest] == ["a", "b", "c"] and end == ""

    diff = await versions.compare(DATASET, ("digits", 1), ("digits", 2))
    assert [(path, before is None, after is None) for path, before, after in diff.changes] == [
        ("b", False, False),
        ("c", False, True),
        ("d", True, False),
    ]
    assert diff.unchanged == 1

    await versions.delete(ALICE, DATASET, "digits", 2)
    assert _types(world)[-1] == "VersionDeleted"
    _, latest = await versions.get(DATASET, "digits", 0)
    assert latest.number == 1
    _, third = await versions.create(ALICE, DATASET, "digits", NewVersion(second))
    assert third.number == 3  # numbers are never reused


async def test_a_retried_version_create_returns_the_first_version(wired: Wired) -> None:
    repos, versions, world, manifests = wired
    await _dataset(repos)
    new = NewVersion(manifests.upload(_manifest(a=b"1")), request_id="push-1")
    _, first = await versions.create(ALICE, DATASET, "digits", new)
    _, again = await versions.create(ALICE, DATASET, "digits", new)
    assert again == first and len(await world.documents("versions")) == 1


async def test_a_version_runs_have_read_is_kept_unless_forced(wired: Wired) -> None:
    repos, versions, world, _ = wired
    await repos.create(ALICE, RepoFields(kind=DATASET, name="read", source=NoSource()))
    [version] = await world.read(lambda uow: uow.versions.find())
    await world.write(lambda uow: uow.versions.save(replace(version, used_by_runs=("run-1",))))
    with pytest.raises(FailedPrecondition, match="read by run run-1"):
        await versions.delete(ALICE, DATASET, "read", 1)
    with pytest.raises(FailedPrecondition, match="read by run run-1"):
        await repos.delete(ALICE, DATASET, "read")
    await versions.delete(ALICE, DATASET, "read", 1, force=True)
    assert await world.documents("versions") == []


async def test_model_versions_start_at_the_default_stage(wired: Wired) -> None:
    repos, versions, _, manifests = wired
    await repos.create(ALICE, RepoFields(kind=RepoKind.MODEL, name="m", source=NoSource()))
    _, second = await versions.create(
        ALICE, RepoKind.MODEL, "m", NewVersion(manifests.upload(_manifest(w=b"1")))
    )
    _, first = await versions.get(RepoKind.MODEL, "m", 1)
    assert (first.stage, second.stage) == ("default", "default")
    await _dataset(repos, "d")
    _, data = await versions.create(ALICE, DATASET, "d", NewVersion(manifests.upload(_manifest(x=b"1"))))
    assert data.stage == ""
