"""Versions the platform reads itself from a directory under its import roots (the embedded stack
on a workstation): the CLI asks first, and uploads when the platform may not or cannot read it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cli, tree_contents, write_tree

from shipyard.client import transfer
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import repos_pb2 as pb
from shipyard.local.harness import Stack

DATASET = pb.REPO_KIND_DATASET


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("roots")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, roots: Path) -> Iterator[Stack]:
    """A stack that may read directories under ``roots`` (SHIPYARD_PATH_IMPORT_ROOTS)."""
    running = Stack(tmp_path_factory.mktemp("stack") / "data",
                    env={"SHIPYARD_PATH_IMPORT_ROOTS": str(roots)}).start()
    try:
        yield running
    finally:
        running.stop()


def test_the_platform_reads_a_directory_under_its_roots(stack: Stack, home: Path, roots: Path,
                                                          tmp_path: Path) -> None:
    files = {"train/a.csv": b"x,y\n1,2\n", "train/b.csv": b"x,y\n3,4\n" * 1000, "README": b"digits"}
    source = write_tree(roots / "digits", files)
    out = cli(stack, home, "dataset", "create", "digits", "--upload", str(source)).stdout
    assert "Version 1 of digits: 3 files" in out and "read by the platform" in out

    (source / "train" / "a.csv").write_bytes(b"x,y\n9,9\n")
    out = cli(stack, home, "dataset", "push", "digits", str(source), "-m", "fix a").stdout
    assert "Version 2 of digits: 3 files" in out and "read by the platform" in out

    cli(stack, home, "dataset", "pull", "digits@1", str(tmp_path / "v1"))
    cli(stack, home, "dataset", "pull", "digits@2", str(tmp_path / "v2"))
    assert tree_contents(tmp_path / "v1") == files
    assert tree_contents(tmp_path / "v2") == {**files, "train/a.csv": b"x,y\n9,9\n"}
    assert "fix a" in cli(stack, home, "dataset", "versions", "digits").stdout


def test_outside_the_roots_the_cli_uploads_instead(stack: Stack, home: Path, tmp_path: Path) -> None:
    source = write_tree(tmp_path / "elsewhere", {"a.txt": b"a", "b.txt": b"b"})
    out = cli(stack, home, "dataset", "create", "elsewhere", "--upload", str(source)).stdout
    assert "Version 1 of elsewhere: 2 files" in out and "uploaded 2 new blobs" in out


def _request(path: Path, repo: str, **extra: object) -> pb.CreateVersionFromPathRequest:
    st = path.stat()
    return pb.CreateVersionFromPathRequest(kind=DATASET, repo=repo, path=str(path), device=st.st_dev,
                                           inode=st.st_ino, request_id=str(uuid.uuid4()), **extra)


def test_refusals_say_path_import_refused_and_change_nothing(
    stack: Stack, admin: Client, roots: Path, tmp_path: Path
) -> None:
    admin.call(admin.repos.CreateRepo, pb.CreateRepoRequest(repo=pb.Repo(
        kind=DATASET, name="refusals", versioning=pb.VERSIONING_DVS, source=pb.Source(none=pb.NoSource()))))
    outside = write_tree(tmp_path / "outside", {"x": b"1"})
    with pytest.raises(ClientError) as refused:
        admin.call(admin.repos.CreateVersionFromPath, _request(outside, "refusals"))
    assert refused.value.code == "PERMISSION_DENIED"
    assert refused.value.message.startswith(transfer.PATH_IMPORT_REFUSED)
    inside = write_tree(roots / "refusals", {"x": b"1"})
    other = pb.CreateVersionFromPathRequest(kind=DATASET, repo="refusals", path=str(inside),
                                            device=inside.stat().st_dev, inode=inside.stat().st_ino + 1)
    with pytest.raises(ClientError) as elsewhere:
        admin.call(admin.repos.CreateVersionFromPath, other)
    assert elsewhere.value.code == "FAILED_PRECONDITION"
    assert elsewhere.value.message.startswith(transfer.PATH_IMPORT_REFUSED)
    assert transfer.import_path(admin, DATASET, "refusals", outside) is None
    versions = admin.call(admin.repos.ListVersions, pb.ListVersionsRequest(kind=DATASET, repo="refusals"))
    assert [v.number for v in versions.versions] == [1]  # only the empty version 1 of "none"


def test_a_link_out_of_the_directory_is_invalid_and_makes_no_version(
    stack: Stack, admin: Client, roots: Path, tmp_path: Path
) -> None:
    admin.call(admin.repos.CreateRepo, pb.CreateRepoRequest(repo=pb.Repo(
        kind=DATASET, name="escape", versioning=pb.VERSIONING_DVS, source=pb.Source(none=pb.NoSource()))))
    (tmp_path / "secret").write_text("not yours")
    tree = write_tree(roots / "escape", {"ok.txt": b"fine"})
    (tree / "innocent.txt").symlink_to(tmp_path / "secret")
    with pytest.raises(ClientError) as invalid:
        admin.call(admin.repos.CreateVersionFromPath, _request(tree, "escape"))
    assert invalid.value.code == "INVALID_ARGUMENT"
    assert "symlink 'innocent.txt' points outside" in invalid.value.message
    with pytest.raises(ClientError, match="'escape' is at version 1, not 5"):
        admin.call(admin.repos.CreateVersionFromPath, _request(roots / "digits", "escape", parent_version=5))
    versions = admin.call(admin.repos.ListVersions, pb.ListVersionsRequest(kind=DATASET, repo="escape"))
    assert [v.number for v in versions.versions] == [1]
