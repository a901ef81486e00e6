"""CreateVersionFromPath, composed as production composes it (this host's directories, a fake uploader):
which directories may be read, and what is checked first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from repo_fakes import FakeManifests, FakeUploader
from repo_world import repo_world, settings
from shipyard_repo.app.path_imports import PathVersion
from shipyard_repo.domain.paths import REFUSED, outside_roots, parse_grantees, parse_roots
from shipyard_repo.domain.repos import RepoFields, Versioning
from shipyard_repo.domain.sources import HostPathSource, NoSource, RepoKind

from shipyard.kit.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NoSpace,
    PermissionDenied,
    ResourceExhausted,
)
from shipyard.kit.manifest import Manifest
from shipyard.kit.testing import ALICE, BOB, OPERATOR_CALLER

DATASET = RepoKind.DATASET


class FailingUploader(FakeUploader):
    async def store_tree(self, root: Path, remember: bool = False) -> Manifest:
        raise ValueError("symlink 'x' points outside the scanned directory, to /etc/passwd")


class FullDiskUploader(FakeUploader):
    async def store_tree(self, root: Path, remember: bool = False) -> Manifest:
        raise NoSpace(f"blob of {root}/a.csv")


def _wanted(path: Path, **extra: object) -> PathVersion:
    st = path.stat()
    return PathVersion(str(path), st.st_dev, st.st_ino, **extra)  # type: ignore[arg-type]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "roots" / "digits"
    root.mkdir(parents=True)
    (root / "a.csv").write_bytes(b"1,2\n")
    (root / "b.csv").write_bytes(b"3,4\n")
    return root


async def _setup(tmp_path: Path, roots: tuple[str, ...] | None = None, failing: bool = False,  # type: ignore[no-untyped-def]
                 everyone: bool = True):
    """Path imports granted to everyone (SHIPYARD_PATH_IMPORTS_FOR=all) unless ``everyone`` is False,
    so that the other rules are tested as alice (a data scientist)."""
    manifests = FakeManifests()
    uploader = (FailingUploader if failing else FakeUploader)(manifests)
    roots = (str(tmp_path / "roots"),) if roots is None else roots
    configured = settings(tmp_path, path_import_roots=os.pathsep.join(roots),
                          path_imports_for="all" if everyone else "operators")
    app = (await repo_world(tmp_path, configured, manifests=manifests, uploader=uploader)).app
    repos, versions, imports = app.repos, app.versions, app.path_imports
    await repos.create(ALICE, RepoFields(kind=DATASET, name="digits", source=NoSource()))
    return imports, uploader, versions


async def test_a_directory_under_a_root_becomes_the_next_version(tmp_path: Path, data: Path) -> None:
    imports, uploader, versions = await _setup(tmp_path)
    _, version = await imports.create(ALICE, DATASET, "digits", _wanted(data, message="first"))
    assert (version.number, version.file_count, version.size_bytes, version.message) == (2, 2, 8, "first")
    assert uploader.calls == [(data, True)]  # with the hash cache: the next push reads only changes
    assert (await versions.get(DATASET, "digits", 0))[1].number == 2


async def test_by_default_only_operators_may_have_a_directory_read(tmp_path: Path, data: Path) -> None:
    imports, uploader, versions = await _setup(tmp_path, everyone=False)
    with pytest.raises(PermissionDenied, match=f"^{REFUSED}: on this platform only operators"):
        await imports.create(ALICE, DATASET, "digits", _wanted(data))
    # Refused before the path is looked at: nothing is told about what exists on the host.
    with pytest.raises(PermissionDenied, match="only operators"):
        await imports.create(ALICE, DATASET, "digits", PathVersion("/nowhere", 1, 2))
    assert uploader.calls == []
    _, version = await imports.create(OPERATOR_CALLER, DATASET, "digits", _wanted(data))
    assert version.number == 2 and (await versions.get(DATASET, "digits", 0))[1].owner == "olga"


def test_who_may_ask_is_operators_or_all() -> None:
    assert parse_grantees("") is False and parse_grantees("operators") is False
    assert parse_grantees("all") is True and parse_grantees(" ALL ") is True
    with pytest.raises(ValueError, match="_FOR: must be 'operators' or 'all', not 'bob'"):
        parse_grantees("bob")


async def test_no_roots_refuses_every_path(tmp_path: Path, data: Path) -> None:
    imports, uploader, _ = await _setup(tmp_path, roots=())
    with pytest.raises(FailedPrecondition, match=f"^{REFUSED}: .*SHIPYARD_PATH_IMPORT_ROOTS"):
        await imports.create(ALICE, DATASET, "digits", _wanted(data))
    assert uploader.calls == []


async def test_a_directory_outside_the_roots_is_refused(tmp_path: Path) -> None:
    imports, uploader, _ = await _setup(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    with pytest.raises(PermissionDenied, match=f"^{REFUSED}: .*elsewhere is outside"):
        await imports.create(ALICE, DATASET, "digits", _wanted(outside))
    assert uploader.calls == []


async def test_a_link_into_the_roots_from_outside_is_judged_by_where_it_leads(tmp_path: Path) -> None:
    imports, _, _ = await _setup(tmp_path)
    (tmp_path / "roots").mkdir()
    secret = tmp_path / "secret"
    secret.mkdir()
    link = tmp_path / "roots" / "innocent"
    link.symlink_to(secret)
    with pytest.raises(PermissionDenied, match="secret is outside"):
        await imports.create(ALICE, DATASET, "digits", _wanted(link))


async def test_another_directory_at_the_same_path_is_refused(tmp_path: Path, data: Path) -> None:
    imports, uploader, _ = await _setup(tmp_path)
    real = _wanted(data)
    wanted = PathVersion(str(data), real.device, real.inode + 1)
    with pytest.raises(FailedPrecondition, match=f"^{REFUSED}: the platform does not see the directory"):
        await imports.create(ALICE, DATASET, "digits", wanted)
    gone = PathVersion(str(tmp_path / "roots" / "nothing"), 1, 2)
    with pytest.raises(FailedPrecondition, match=f"^{REFUSED}"):
        await imports.create(ALICE, DATASET, "digits", gone)
    assert uploader.calls == []


async def test_a_relative_path_is_invalid(tmp_path: Path) -> None:
    imports, _, _ = await _setup(tmp_path)
    with pytest.raises(InvalidArgument, match=r"^path: must be an absolute path"):
        await imports.create(ALICE, DATASET, "digits", PathVersion("roots/digits", 1, 2))


async def test_repo_rules_are_checked_before_any_file_is_read(tmp_path: Path, data: Path) -> None:
    imports, uploader, _ = await _setup(tmp_path)
    with pytest.raises(Aborted, match="is at version 1, not 7"):
        await imports.create(ALICE, DATASET, "digits", _wanted(data, parent_version=7))
    with pytest.raises(PermissionDenied, match="belongs to 'alice'"):
        await imports.create(BOB, DATASET, "digits", _wanted(data))
    assert uploader.calls == []


async def test_an_unversioned_repo_is_refused_before_reading(tmp_path: Path, data: Path) -> None:
    world = await repo_world(tmp_path, settings(tmp_path, path_import_roots=str(tmp_path / "roots"),
                                                path_imports_for="all"))
    repos, imports, uploader = world.app.repos, world.app.path_imports, world.uploader
    await repos.create(ALICE, RepoFields(kind=DATASET, name="logs", versioning=Versioning.NONE,
                                         source=HostPathSource("/data/logs")))
    with pytest.raises(FailedPrecondition, match="is not versioned"):
        await imports.create(ALICE, DATASET, "logs", _wanted(data))
    assert uploader.calls == []


async def test_what_cannot_be_stored_is_an_invalid_path_naming_the_entry(tmp_path: Path, data: Path) -> None:
    imports, _, versions = await _setup(tmp_path, failing=True)
    with pytest.raises(InvalidArgument, match=r"^path: symlink 'x' points outside"):
        await imports.create(ALICE, DATASET, "digits", _wanted(data))
    assert (await versions.get(DATASET, "digits", 0))[1].number == 1  # nothing half-made


async def test_a_full_disk_is_the_platforms_error_not_a_bad_path(tmp_path: Path, data: Path) -> None:
    imports, _, versions = await _setup(tmp_path)
    imports.uploader = FullDiskUploader(imports.uploader.manifests)
    with pytest.raises(ResourceExhausted, match=r"^no space left on device while writing blob of"):
        await imports.create(ALICE, DATASET, "digits", _wanted(data))
    assert (await versions.get(DATASET, "digits", 0))[1].number == 1


def test_roots_are_absolute_paths_separated_by_the_path_separator() -> None:
    assert parse_roots(f"/home/ann{os.pathsep}{os.pathsep}/srv/data/") == ("/home/ann", "/srv/data")
    assert parse_roots("") == ()
    with pytest.raises(ValueError, match="'data' is not an absolute path"):
        parse_roots("data")


def test_a_root_is_a_directory_not_a_prefix() -> None:
    roots = ("/home/ann",)
    assert not outside_roots("/home/ann", roots)
    assert not outside_roots("/home/ann/digits/train", roots)
    assert outside_roots("/home/anna/digits", roots)
    assert outside_roots("/home", roots)
