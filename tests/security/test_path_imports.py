"""Attack: a data scientist has the platform read a directory on its host — anything under the
import roots (on `shipyard up`, the operator's home), 0700 directories included — into a dataset
of theirs (CreateVersionFromPath). Path imports are the operator's grant: other users are refused
(and their CLI uploads instead) unless the operator sets SHIPYARD_PATH_IMPORTS_FOR=all.

The platform reads as its own user, so it cannot tell what the asking user could read; that is
why the grant is the operator's and off for everyone else by default."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.client import transfer
from shipyard.client.connection import Client, ClientError
from shipyard.contracts.repo.v1 import repos_pb2 as pb
from shipyard.local.harness import Stack
from tests.support.users import signed_in

DATASET = pb.REPO_KIND_DATASET


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator's directories: one open, one private (0700) with a secret in it."""
    root = tmp_path_factory.mktemp("operator-home")
    (root / "shared").mkdir()
    (root / "shared" / "notes.txt").write_text("plans\n")
    private = root / "private"
    private.mkdir(mode=0o700)
    (private / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    return root


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, roots: Path) -> Iterator[Stack]:
    """A stack that may read directories under ``roots``, as `shipyard up` does the operator's home."""
    with Stack(tmp_path_factory.mktemp("stack") / "data",
               env={"SHIPYARD_PATH_IMPORT_ROOTS": str(roots)}) as running:
        yield running


@pytest.fixture(scope="module")
def bob(stack: Stack, admin: Client) -> Iterator[Client]:
    """Bob, a data scientist, with his own dataset loot (an empty version 1)."""
    client = signed_in(stack, admin, "bob")
    client.call(client.repos.CreateRepo, pb.CreateRepoRequest(repo=pb.Repo(
        kind=DATASET, name="loot", versioning=pb.VERSIONING_DVS, source=pb.Source(none=pb.NoSource()))))
    yield client
    client.close()


def _from(path: Path, repo: str) -> pb.CreateVersionFromPathRequest:
    st = path.stat()
    return pb.CreateVersionFromPathRequest(kind=DATASET, repo=repo, path=str(path), device=st.st_dev,
                                           inode=st.st_ino, request_id=str(uuid.uuid4()))


@pytest.mark.parametrize("directory", ["shared", "private"])
def test_a_data_scientist_cannot_have_the_platform_read_a_directory(
    bob: Client, roots: Path, directory: str
) -> None:
    with pytest.raises(ClientError) as refused:
        bob.call(bob.repos.CreateVersionFromPath, _from(roots / directory, "loot"))
    assert refused.value.code == "PERMISSION_DENIED"
    assert refused.value.message.startswith(transfer.PATH_IMPORT_REFUSED)  # so his CLI uploads instead
    assert "only operators" in refused.value.message
    latest = bob.call(bob.repos.GetVersion, pb.GetVersionRequest(kind=DATASET, repo="loot"))
    assert latest.number == 1 and latest.file_count == 0


def test_the_operator_still_imports_from_the_roots(admin: Client, roots: Path) -> None:
    admin.call(admin.repos.CreateRepo, pb.CreateRepoRequest(repo=pb.Repo(
        kind=DATASET, name="notes", versioning=pb.VERSIONING_DVS, source=pb.Source(none=pb.NoSource()))))
    version = admin.call(admin.repos.CreateVersionFromPath, _from(roots / "shared", "notes"))
    assert (version.number, version.file_count) == (2, 1)
