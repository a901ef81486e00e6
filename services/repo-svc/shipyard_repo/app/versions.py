"""Version use cases: incremental upload (which blobs are missing), create, read, compare, delete."""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from shipyard.kit.caller import Caller
from shipyard.kit.clock import Clock, utc_now
from shipyard.kit.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shipyard.kit.manifest import Manifest, ManifestEntry
from shipyard.kit.paging import decode_token, encode_token, page_limit
from shipyard_repo.app.ports import ManifestStore, UnitOfWork, Units, UploadLedger
from shipyard_repo.app.repos import must_get_repo
from shipyard_repo.domain.events import RepoUpdated, VersionCreated, VersionDeleted
from shipyard_repo.domain.labels import without_version
from shipyard_repo.domain.repos import Repo, RepoStatus, check_may_change, check_may_write, check_versioned
from shipyard_repo.domain.sources import RepoKind
from shipyard_repo.domain.versions import (
    EMPTY_MANIFEST,
    MODEL_STAGES,
    Version,
    check_digest,
    check_message,
    check_number,
    check_unused,
)

MISSING_MAX = 100_000
# The one service whose word repo-svc takes on which run produced a version (TrackingService's
# RegisterModelVersion, which checked that its caller may register that run's work).
RUN_RECORDER = "run-svc"
FILES_DEFAULT = 1000
FILES_MAX = 10_000


@dataclass(frozen=True)
class NewVersion:
    """What a new version is made of, beyond its manifest."""

    manifest_digest: str
    parent_version: int = 0
    message: str = ""
    request_id: str = ""
    produced_by_run: str = ""
    produced_by_run_name: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    # A run's output names the repo it was authorized to write at submit: that repo, whatever its
    # name now, and never another one made under its name since.
    repo_id: str = ""


def with_run_facts(new: NewVersion, caller: Caller, run_id: str, run_name: str,
                   metrics: Mapping[str, float], params: Mapping[str, str]) -> NewVersion:
    """``new`` as produced by run ``run_id``, with the run's name, metrics and params — taken only
    from run-svc. Anyone else naming a run is refused (they could claim someone's run and its
    metrics for a version of theirs); the rest, without a run, is ignored from them."""
    if caller.via != RUN_RECORDER:
        if run_id:
            raise PermissionDenied("produced_by_run: only run-svc records what a run produced "
                                   "(register a run's model through the tracking API)")
        return new
    return replace(new, produced_by_run=run_id, produced_by_run_name=run_name, metrics=dict(metrics),
                   params=dict(params))


@dataclass(frozen=True)
class Comparison:
    """Two versions side by side and what differs between their files."""

    left: tuple[Repo, Version]
    right: tuple[Repo, Version]
    changes: list[tuple[str, ManifestEntry | None, ManifestEntry | None]]
    unchanged: int


@dataclass
class Versions:
    """The version use cases over a unit-of-work factory and the manifests in the blob store."""

    uow: Units
    manifests: ManifestStore
    clock: Clock = utc_now
    uploads: UploadLedger | None = None  # pending uploads, settled as versions name them

    async def find_missing(self, digests: list[str]) -> list[str]:
        """Those of ``digests`` the blob store lacks: the client uploads only these. The others
        are touched: the client is about to name them in a version, so the garbage collector
        leaves them for its grace period."""
        if len(digests) > MISSING_MAX:
            raise InvalidArgument("digests", f"at most {MISSING_MAX:,} per call (got {len(digests):,})")
        for index, digest in enumerate(digests):
            check_digest(f"digests[{index}]", digest)
        return await self.manifests.touch(list(dict.fromkeys(digests)))

    async def create(
        self, caller: Caller, kind: RepoKind, name: str, new: NewVersion
    ) -> tuple[Repo, Version]:
        """The next version of the repo, from a manifest whose blobs are all stored; only the
        repo's owner or an operator writes one (for a run: the run's owner, checked again here).

        With ``parent_version`` set, the call fails with Aborted (changing nothing) when another
        version was created since: two writers get two versions or one clean conflict.
        """
        check_digest("manifest_digest", new.manifest_digest)
        check_number("parent_version", new.parent_version)
        check_message(new.message)
        manifest = await self._complete_manifest(new.manifest_digest)
        made = await self._commit(caller, kind, name, new, manifest)
        if self.uploads is not None:
            await self.uploads.settle(caller.user, [new.manifest_digest, *manifest.blobs()])
        return made

    async def _commit(
        self, caller: Caller, kind: RepoKind, name: str, new: NewVersion, manifest: Manifest
    ) -> tuple[Repo, Version]:
        async with self.uow() as uow:
            key = f"{caller.user}:version:{new.request_id}"
            if new.request_id and (made := await uow.requests.resource_of(key)) is not None:
                return await _made_earlier(uow, made, new.request_id)
            repo = await _target(uow, kind, name, new.repo_id)
            _check_next(repo, caller, new.parent_version)
            version = await uow.versions.add(
                Version(
                    repo_id=repo.id,
                    number=repo.latest_version + 1,
                    manifest_digest=new.manifest_digest,
                    size_bytes=manifest.size,
                    file_count=manifest.file_count,
                    owner=caller.user,
                    create_time=self.clock(),
                    message=new.message,
                    produced_by_run=new.produced_by_run,
                    run_names={new.produced_by_run: new.produced_by_run_name}
                    if new.produced_by_run and new.produced_by_run_name else {},
                    metrics=dict(new.metrics),
                    params=dict(new.params),
                    stage=MODEL_STAGES[0] if repo.kind is RepoKind.MODEL else "",
                )
            )
            repo = await uow.repos.save(
                replace(
                    repo,
                    latest_version=version.number,
                    status=RepoStatus.READY,
                    status_reason="",
                    update_time=version.create_time,
                )
            )
            if new.request_id:
                await uow.requests.remember(key, version.id)
            uow.record(VersionCreated(repo, version, caller))
            return repo, version

    async def check_writable(self, caller: Caller, kind: RepoKind, name: str, parent_version: int) -> None:
        """Raise what :meth:`create` would about the repo itself, before costly work for a version."""
        check_number("parent_version", parent_version)
        async with self.uow() as uow:
            _check_next(await must_get_repo(uow, kind, name), caller, parent_version)

    async def check_write(self, caller: Caller, kind: RepoKind, name: str) -> Repo:
        """The repo, if ``caller`` may write its next version (a run's output, asked at submit)."""
        async with self.uow() as uow:
            repo = await must_get_repo(uow, kind, name)
        _check_next(repo, caller, 0)
        return repo

    async def get(self, kind: RepoKind, name: str, number: int) -> tuple[Repo, Version]:
        """That version (0: the latest); NotFound otherwise."""
        check_number("number", number)
        async with self.uow() as uow:
            return await must_get_version(uow, kind, name, number)

    async def list_page(
        self, kind: RepoKind, name: str, page_size: int, page_token: str
    ) -> tuple[Repo, list[Version], str]:
        """One page of the repo's versions, newest first."""
        limit = page_limit(page_size)
        after = decode_token("versions", page_token, 1)
        async with self.uow() as uow:
            repo = await must_get_repo(uow, kind, name)
            versions = await uow.versions.list(repo.id, int(after[0]) if after else None, limit + 1)
        more = len(versions) > limit
        versions = versions[:limit]
        return repo, versions, encode_token("versions", str(versions[-1].number)) if more else ""

    async def list_files(
        self, kind: RepoKind, name: str, number: int, prefix: str, page_size: int, page_token: str
    ) -> tuple[list[ManifestEntry], str]:
        """One page of a version's files in path order, under ``prefix``."""
        limit = page_limit(page_size, FILES_DEFAULT, FILES_MAX)
        after = decode_token("files", page_token, 1)
        _, version = await self.get(kind, name, number)
        entries = (await self.read_manifest(version.manifest_digest)).entries
        start = bisect.bisect_right([e.path for e in entries], after[0]) if after else 0
        chosen = [e for e in entries[start:] if e.path.startswith(prefix)][: limit + 1]
        more = len(chosen) > limit
        chosen = chosen[:limit]
        return chosen, encode_token("files", chosen[-1].path) if more else ""

    async def compare(self, kind: RepoKind, left: tuple[str, int], right: tuple[str, int]) -> Comparison:
        """Two versions (of one repo or two) side by side: metadata, metrics and files."""
        one = await self.get(kind, *left)
        two = await self.get(kind, *right)
        before = {e.path: e for e in (await self.read_manifest(one[1].manifest_digest)).entries}
        after = {e.path: e for e in (await self.read_manifest(two[1].manifest_digest)).entries}
        changes = [
            (path, before.get(path), after.get(path))
            for path in sorted(before.keys() | after.keys())
            if before.get(path) != after.get(path)
        ]
        return Comparison(one, two, changes, len(before.keys() | after.keys()) - len(changes))

    async def delete(
        self, caller: Caller, kind: RepoKind, name: str, number: int, force: bool = False
    ) -> None:
        """Delete one version (owner or operator), and the aliases that name it. Its number is
        never reused.

        A version runs have read is refused unless ``force``: deleting it would break their lineage.
        """
        if number < 1:
            raise InvalidArgument("number", "name the version to delete (≥ 1)")
        async with self.uow() as uow:
            repo, version = await must_get_version(uow, kind, name, number)
            check_may_change(repo, caller)
            check_unused([version], force)
            await uow.versions.remove(version)
            uow.record(VersionDeleted(repo, version, caller))
            aliases = without_version(repo.aliases, number)
            if aliases != repo.aliases:  # an alias names a version that exists, or nothing
                saved = await uow.repos.save(replace(repo, aliases=aliases, update_time=self.clock()))
                uow.record(RepoUpdated(saved, ("aliases",), caller))

    async def read_manifest(self, digest: str) -> Manifest:
        """A stored manifest (the empty one needs no blob)."""
        if digest == EMPTY_MANIFEST:
            return Manifest(entries=())
        return await self.manifests.read(digest)

    async def _complete_manifest(self, digest: str) -> Manifest:
        try:
            manifest = await self.read_manifest(digest)
        except NotFound:
            raise FailedPrecondition(
                f"manifest {digest} is not stored: upload it (and the files it names) first"
            ) from None
        # Touched, not only looked up: a garbage collection running now keeps them, or they are
        # already gone and reported missing here (see app/garbage.py).
        named = manifest.blobs() if digest == EMPTY_MANIFEST else [digest, *manifest.blobs()]
        missing = await self.manifests.touch(named)
        if not missing:
            # The version must not outlive its content: make the blobs durable before it commits.
            await self.manifests.sync()
            return manifest
        files = [m for m in missing if m != digest]
        if not files:
            raise FailedPrecondition(
                f"manifest {digest} is not stored: upload it (and the files it names) first"
            )
        raise FailedPrecondition(
            f"{len(files):,} of the manifest's {len(manifest.blobs()):,} blobs are not "
            f"stored, e.g. {files[0]}: upload them first"
        )


def _check_next(repo: Repo, caller: Caller, parent_version: int) -> None:
    """That ``caller`` may add a version to ``repo`` after ``parent_version``."""
    check_versioned(repo)
    check_may_write(repo, caller)
    if parent_version and parent_version != repo.latest_version:
        raise Aborted(
            f"{repo.label} is at version {repo.latest_version}, not {parent_version}: "
            "someone created a version meanwhile; pull it, then push again"
        )


async def _target(uow: UnitOfWork, kind: RepoKind, name: str, repo_id: str) -> Repo:
    if not repo_id:
        return await must_get_repo(uow, kind, name)
    repo = await uow.repos.by_id(repo_id)
    if repo is None or repo.kind is not kind:
        raise NotFound(f"{kind.value} {name!r} (id {repo_id}) was deleted since the run was submitted")
    return repo


async def must_get_version(uow: UnitOfWork, kind: RepoKind, name: str, number: int) -> tuple[Repo, Version]:
    """The repo and its version ``number`` (0: the latest); NotFound, or FailedPrecondition for a
    repo that keeps no versions."""
    repo = await must_get_repo(uow, kind, name)
    check_versioned(repo)
    wanted = number or repo.latest_version
    version = await uow.versions.get(repo.id, wanted) if wanted else None
    if version is None:
        if number == 0:
            latest = await uow.versions.list(repo.id, None, 1)
            if latest:
                return repo, latest[0]
            raise NotFound(f"{repo.label} has no versions yet")
        raise NotFound(f"{repo.label} has no version {number}")
    return repo, version


async def _made_earlier(uow: UnitOfWork, made: str, request_id: str) -> tuple[Repo, Version]:
    repo_id, _, number = made.rpartition(":")
    repo = await uow.repos.by_id(repo_id)
    version = await uow.versions.get(repo_id, int(number)) if repo else None
    if repo is None or version is None:
        raise NotFound(f"request {request_id!r} created a version that was deleted since")
    return repo, version
