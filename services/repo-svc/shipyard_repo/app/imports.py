"""Imports: a versioned repo whose source is downloaded (git, URL, S3, GCS) gets its first version
from that source, in the background: queued → downloading → ready (or failed, with the reason).

The work is found in the store (repos still queued or downloading), not in a message, so an
import interrupted by a crash starts again on the next pass; the version's request id makes a
repeated import return the version made the first time.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from shipyard.kit.caller import Caller
from shipyard.kit.errors import ShipyardError
from shipyard_repo.app.credentials import Credentials
from shipyard_repo.app.ports import BlobUploader, RepoFilter, SourceFetcher, Units
from shipyard_repo.app.versions import NewVersion, Versions
from shipyard_repo.domain.repos import Repo, RepoStatus

log = logging.getLogger(__name__)
PENDING = (RepoStatus.QUEUED, RepoStatus.DOWNLOADING)


class FetchFailed(Exception):
    """A source could not be fetched; the message is shown to the user as the repo's status reason."""


async def secret_of(credentials: Credentials, repo: Repo) -> tuple[str | None, str]:
    """The secret and user name of the stored credential the repo's source names (None, "" if none)."""
    name = getattr(repo.source, "credential", "")
    if not name:
        return None, ""
    credential, secret = await credentials.reveal(repo.owner, name)
    return secret, credential.username


@dataclass
class Imports:
    """Runs pending imports, one at a time."""

    uow: Units
    versions: Versions
    credentials: Credentials
    fetcher: SourceFetcher
    uploader: BlobUploader
    work_dir: Path

    async def run_forever(self, interval: float = 1.0) -> None:
        """Import whatever is pending, then look again every ``interval`` seconds."""
        while True:
            for repo in await self.pending():
                await self.run_one(repo)
            await asyncio.sleep(interval)

    async def pending(self) -> list[Repo]:
        """Repos waiting for (or interrupted in) their import."""
        async with self.uow() as uow:
            return [
                repo
                for status in PENDING
                for repo in await uow.repos.list(RepoFilter(status=status), None, 1000)
            ]

    async def run_one(self, repo: Repo) -> None:
        """Fetch the repo's source, store its files, and make version 1; or mark it failed."""
        await self._set_status(repo, RepoStatus.DOWNLOADING, "")
        try:
            secret, username = await secret_of(self.credentials, repo)
            self.work_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.work_dir, prefix=f"import-{repo.id}-") as tmp:
                into = Path(tmp) / "content"
                into.mkdir()
                await self.fetcher.fetch(repo.source, into, secret, username)
                manifest = await self.uploader.store_tree(into)
            new = NewVersion(manifest.digest, message=f"imported from {repo.source.KIND}",
                             request_id=f"import:{repo.id}", repo_id=repo.id)
            await self.versions.create(Caller(repo.owner, frozenset()), repo.kind, repo.name, new)
            log.info("imported %s: %d files", repo.label, manifest.file_count)
        except (FetchFailed, ShipyardError, ValueError, OSError) as exc:
            reason = getattr(exc, "message", None) or str(exc)
            log.warning("import of %s failed: %s", repo.label, reason)
            await self._set_status(repo, RepoStatus.FAILED, reason[:2000])

    async def _set_status(self, repo: Repo, status: RepoStatus, reason: str) -> None:
        async with self.uow() as uow:
            current = await uow.repos.by_id(repo.id)
            if current is None or current.status not in (*PENDING, status):
                return
            await uow.repos.save(replace(current, status=status, status_reason=reason))
