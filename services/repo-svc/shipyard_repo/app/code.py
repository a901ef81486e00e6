"""Code snapshots: a code repo's files at a commit, in the blob store, for runs to check out.

Runs get the pinned commit (an empty commit means the branch's latest, pinned when the run is
submitted). A commit is stored once: later snapshots of the same full sha are answered from the
record of the first, without cloning again.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from shipyard.kit.caller import Caller
from shipyard.kit.errors import FailedPrecondition
from shipyard.kit.manifest import Manifest
from shipyard_repo.app.credentials import Credentials
from shipyard_repo.app.imports import FetchFailed, secret_of
from shipyard_repo.app.ports import BlobUploader, ManifestStore, SourceFetcher, Units
from shipyard_repo.app.repos import must_get_repo
from shipyard_repo.domain.repos import Repo
from shipyard_repo.domain.sources import GitSource, RepoKind

FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class CodeSnapshot:
    """A code repo at one commit."""

    repo: Repo
    commit: str
    manifest: Manifest


@dataclass
class CodeSnapshots:
    """Taking and finding code snapshots."""

    uow: Units
    credentials: Credentials
    fetcher: SourceFetcher
    uploader: BlobUploader
    manifests: ManifestStore
    work_dir: Path

    async def snapshot(self, caller: Caller, name: str, commit: str = "") -> CodeSnapshot:
        """The repo's files at ``commit`` (empty: the latest of its branch, or its pinned commit)."""
        async with self.uow() as uow:
            repo = await must_get_repo(uow, RepoKind.CODE, name)
            wanted = commit or _pinned(repo)
            full = FULL_SHA.fullmatch(wanted) is not None
            stored = await uow.requests.resource_of(_key(repo, wanted)) if full else None
        if stored is not None:
            return CodeSnapshot(repo, wanted, await self.manifests.read(stored))
        if not isinstance(repo.source, GitSource):
            raise FailedPrecondition(f"{repo.label} has no git source to check out")
        secret, username = await secret_of(self.credentials, repo)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.work_dir, prefix=f"code-{repo.id}-") as tmp:
            into = Path(tmp) / "files"
            into.mkdir()
            try:
                sha = await self.fetcher.fetch(replace(repo.source, commit=wanted), into, secret, username)
            except FetchFailed as exc:
                raise FailedPrecondition(f"{repo.label} at {wanted or 'its latest commit'}: {exc}") from None
            manifest = await self.uploader.store_tree(into)
        async with self.uow() as uow:
            if await uow.requests.resource_of(_key(repo, sha)) is None:
                await uow.requests.remember(_key(repo, sha), manifest.digest)
        return CodeSnapshot(repo, sha, manifest)


def _pinned(repo: Repo) -> str:
    return repo.source.commit if isinstance(repo.source, GitSource) else ""


def _key(repo: Repo, commit: str) -> str:
    return f"code:{repo.id}:{commit}"
