"""Code snapshots, composed as production composes them (a fake fetcher, the kit's in-memory store):
a commit is pinned, stored once, and failures say why."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_world import repo_world
from shipyard_repo.app.imports import FetchFailed
from shipyard_repo.app.ports import SourceFetcher
from shipyard_repo.domain.repos import RepoFields, Versioning
from shipyard_repo.domain.sources import GitSource, NoSource, RepoKind, Source

from shipyard.kit.errors import FailedPrecondition, NotFound
from shipyard.kit.testing import ALICE

SHA = "a" * 40


class GitFetcher(SourceFetcher):
    """Writes train.py; answers with a fixed sha (or fails); remembers the commits asked for."""

    def __init__(self, fail: bool = False) -> None:
        self.asked: list[str] = []
        self.fail = fail

    async def fetch(self, source: Source, into: Path, secret: str | None, username: str = "") -> str:
        assert isinstance(source, GitSource)
        self.asked.append(source.commit)
        if self.fail:
            raise FetchFailed("git checkout failed: reference is not a tree")
        (into / "train.py").write_text("print('hi')\n")
        return SHA


async def _setup(tmp_path: Path, fail: bool = False):  # type: ignore[no-untyped-def]
    fetcher = GitFetcher(fail)
    app = (await repo_world(tmp_path, fetcher=fetcher)).app
    repos, code = app.repos, app.code
    await repos.create(ALICE, RepoFields(kind=RepoKind.CODE, name="train", versioning=Versioning.NONE,
                                         source=GitSource("https://github.com/acme/train.git")))
    return code, fetcher, repos


async def test_the_latest_commit_is_pinned_and_its_files_stored(tmp_path: Path) -> None:
    code, fetcher, _ = await _setup(tmp_path)
    snap = await code.snapshot(ALICE, "train")
    assert (snap.commit, [e.path for e in snap.manifest.entries]) == (SHA, ["train.py"])
    assert fetcher.asked == [""]


async def test_a_commit_seen_before_is_not_fetched_again(tmp_path: Path) -> None:
    code, fetcher, _ = await _setup(tmp_path)
    first = await code.snapshot(ALICE, "train")
    again = await code.snapshot(ALICE, "train", SHA)
    assert again.manifest == first.manifest
    assert fetcher.asked == [""]  # the second answer came from the record of the first


async def test_a_failed_checkout_is_a_failed_precondition_naming_the_repo(tmp_path: Path) -> None:
    code, _, _ = await _setup(tmp_path, fail=True)
    with pytest.raises(FailedPrecondition, match=r"code 'train' at b{40}: git checkout failed"):
        await code.snapshot(ALICE, "train", "b" * 40)


async def test_only_code_repos_with_git_sources(tmp_path: Path) -> None:
    code, _, repos = await _setup(tmp_path)
    with pytest.raises(NotFound):
        await code.snapshot(ALICE, "nope")
    await repos.create(ALICE, RepoFields(kind=RepoKind.DATASET, name="data", source=NoSource()))
    with pytest.raises(NotFound):
        await code.snapshot(ALICE, "data")  # a dataset is not a code repo
