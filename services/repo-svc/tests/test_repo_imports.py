"""Imports of downloaded sources, composed as production composes them (a fake fetcher, the kit's
in-memory store): queued → downloading → ready, or failed with a reason."""

from __future__ import annotations

from pathlib import Path

from repo_world import repo_world
from shipyard_repo.app.imports import FetchFailed
from shipyard_repo.app.ports import SourceFetcher
from shipyard_repo.domain.credentials import CredentialFields, CredentialType
from shipyard_repo.domain.repos import RepoFields, RepoStatus
from shipyard_repo.domain.sources import GitSource, RepoKind, Source, UrlSource

from shipyard.kit.testing import ALICE


class FilesFetcher(SourceFetcher):
    """Writes fixed files, or fails; remembers the secret it was given."""

    def __init__(self, files: dict[str, bytes] | None) -> None:
        self.files = files
        self.secrets: list[tuple[str | None, str]] = []

    async def fetch(self, source: Source, into: Path, secret: str | None, username: str = "") -> str:
        self.secrets.append((secret, username))
        if self.files is None:
            raise FetchFailed("git clone failed: repository not found")
        for name, data in self.files.items():
            (into / name).write_bytes(data)
        return "0" * 40 if isinstance(source, GitSource) else ""


async def _imports(files: dict[str, bytes] | None, tmp_path: Path):  # type: ignore[no-untyped-def]
    fetcher = FilesFetcher(files)
    app = (await repo_world(tmp_path, fetcher=fetcher)).app
    return app.repos, app.versions, app.credentials, fetcher, app.imports


async def test_a_queued_import_becomes_version_1_and_the_repo_ready(tmp_path: Path) -> None:
    repos, versions, _, _, imports = await _imports({"a.csv": b"1,2", "b.csv": b"3"}, tmp_path)
    created = await repos.create(
        ALICE, RepoFields(kind=RepoKind.DATASET, name="web", source=UrlSource("https://example.org/a.zip"))
    )
    assert created.status is RepoStatus.QUEUED
    for repo in await imports.pending():
        await imports.run_one(repo)
    repo, version = await versions.get(RepoKind.DATASET, "web", 0)
    assert (repo.status, version.number, version.file_count) == (RepoStatus.READY, 1, 2)
    assert await imports.pending() == []
    await imports.run_one(repo)  # a repeated import (after a crash) makes no second version
    assert (await versions.get(RepoKind.DATASET, "web", 0))[1].number == 1


async def test_a_failed_fetch_marks_the_repo_failed_with_the_reason(tmp_path: Path) -> None:
    repos, _, _, _, imports = await _imports(None, tmp_path)
    await repos.create(
        ALICE,
        RepoFields(kind=RepoKind.DATASET, name="gone", source=GitSource("https://github.com/acme/gone.git")),
    )
    (repo,) = await imports.pending()
    await imports.run_one(repo)
    failed = await repos.get(RepoKind.DATASET, "gone")
    assert (failed.status, failed.status_reason) == (
        RepoStatus.FAILED,
        "git clone failed: repository not found",
    )
    assert await imports.pending() == []


async def test_the_fetch_gets_the_owners_stored_secret(tmp_path: Path) -> None:
    repos, _, credentials, fetcher, imports = await _imports({"x": b"1"}, tmp_path)
    await credentials.save(ALICE, CredentialFields("gh", CredentialType.PASSWORD, "github.com", "al"), "pw")
    await repos.create(
        ALICE,
        RepoFields(
            kind=RepoKind.DATASET,
            name="private",
            source=GitSource("https://github.com/acme/p.git", credential="gh"),
        ),
    )
    for repo in await imports.pending():
        await imports.run_one(repo)
    assert fetcher.secrets == [("pw", "al")]
