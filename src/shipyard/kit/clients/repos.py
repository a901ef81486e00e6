"""The client of repo-svc (it owns projects, repos and their versions): what other services read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import grpc

from shipyard.contracts.repo.v1 import images_pb2, images_pb2_grpc, repos_pb2, repos_pb2_grpc
from shipyard.kit.assertions import CallerAssertions
from shipyard.kit.caller import Caller
from shipyard.kit.errors import InvalidArgument
from shipyard.kit.grpcio import error_of

REPO_SVC = "repo-svc"  # its one name: the audience of the caller assertions this client signs
TIMEOUT_S = 10.0
CODE_TIMEOUT_S = 600.0  # a clone of a large repository
VERSION_TIMEOUT_S = 60.0  # repo-svc reads the manifest and touches every blob it names
KINDS = {"dataset": repos_pb2.REPO_KIND_DATASET, "featureset": repos_pb2.REPO_KIND_FEATURESET,
         "model": repos_pb2.REPO_KIND_MODEL}


@dataclass(frozen=True)
class RepoVersion:
    """A version as repo-svc keeps it: its number, the manifest of its files, its repo's id, and
    the metrics the run that made it logged last."""

    number: int
    manifest_digest: str
    repo_id: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CodeSnapshot:
    """A code repo at a commit, as repo-svc stored it."""

    commit: str  # the full sha
    manifest_digest: str


@dataclass(frozen=True)
class ImageChoice:
    """The image a run executes in, as the catalog resolved it: what a cluster runs (``url``) and what
    the local executor builds (``python`` and ``requirements``, identified by ``digest``)."""

    name: str
    url: str
    python: str
    requirements: tuple[str, ...]
    digest: str
    framework: str = ""
    framework_version: str = ""


class RepoClient:
    """repo-svc's RepoService, each call made on behalf of a caller."""

    def __init__(self, address: str, assertions: CallerAssertions) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._assertions = assertions
        self._repos = repos_pb2_grpc.RepoServiceStub(self._channel)
        self._images = images_pb2_grpc.ImageServiceStub(self._channel)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    def _for(self, caller: Caller) -> tuple[tuple[str, str]]:
        return self._assertions.metadata(caller, REPO_SVC)

    async def version(self, caller: Caller, repo_kind: str, repo: str, number: int) -> RepoVersion:
        """The version (0: the latest) of a dataset, featureset or model repo; NotFound or
        FailedPrecondition as repo-svc says."""
        request = repos_pb2.GetVersionRequest(kind=_kind(repo_kind), repo=repo, number=number)
        try:
            found = await self._repos.GetVersion(request, metadata=self._for(caller), timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"{repo_kind} {repo}@{number or 'latest'}") from None
        return RepoVersion(found.number, found.manifest_digest, found.repo_id, dict(found.metrics))

    async def snapshot_code(self, caller: Caller, repo: str, commit: str) -> CodeSnapshot:
        """The code repo's files at ``commit`` (empty: its latest), stored for a run or a server."""
        request = repos_pb2.SnapshotCodeRequest(repo=repo, commit=commit)
        try:
            snap = await self._repos.SnapshotCode(request, metadata=self._for(caller), timeout=CODE_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"code {repo}@{commit or 'latest'}") from None
        return CodeSnapshot(snap.commit, snap.manifest_digest)

    async def create_version(self, caller: Caller, repo_kind: str, repo: str, manifest_digest: str, *,
                             produced_by_run: str = "", produced_by_run_name: str = "",
                             metrics: Mapping[str, float] | None = None,
                             params: Mapping[str, str] | None = None, message: str = "",
                             request_id: str = "", parent_version: int = 0) -> repos_pb2.Version:
        """The repo's next version, from a manifest whose blobs are all stored, made for ``caller``
        (who must be allowed to write it) and produced by run ``produced_by_run`` with its metrics
        and params — repo-svc takes a run's facts only from run-svc, which this client must then be
        signing as. A retried ``request_id`` returns the first version. PermissionDenied,
        FailedPrecondition (a blob not stored), NotFound or Aborted (``parent_version`` no longer the
        latest) as repo-svc says."""
        request = repos_pb2.CreateVersionRequest(
            kind=_kind(repo_kind), repo=repo, manifest_digest=manifest_digest, parent_version=parent_version,
            message=message, request_id=request_id, produced_by_run=produced_by_run,
            produced_by_run_name=produced_by_run_name, metrics=dict(metrics or {}), params=dict(params or {}))
        try:
            version: repos_pb2.Version = await self._repos.CreateVersion(
                request, metadata=self._for(caller), timeout=VERSION_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"{repo_kind} {repo}") from None
        return version

    async def check_write(self, caller: Caller, repo_kind: str, repo: str) -> str:
        """The repo's id, if it exists, is versioned and ``caller`` may write its next version;
        PermissionDenied, FailedPrecondition or NotFound naming it otherwise."""
        request = repos_pb2.CheckVersionWriteRequest(kind=_kind(repo_kind), name=repo)
        try:
            found = await self._repos.CheckVersionWrite(request, metadata=self._for(caller),
                                                        timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, f"{repo_kind} {repo}") from None
        return found.id

    async def resolve_image(self, caller: Caller, name: str, framework: str,
                            framework_version: str) -> ImageChoice:
        """The catalog's image by ``name``, or the standard image of ``framework`` (and version);
        NotFound or FailedPrecondition (e.g. an image still building) as repo-svc says."""
        request = images_pb2.ResolveImageRequest(name=name, framework=framework,
                                                 framework_version=framework_version)
        what = f"image {name}" if name else f"framework {framework or 'default'} {framework_version}".rstrip()
        try:
            image = await self._images.ResolveImage(request, metadata=self._for(caller), timeout=TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise error_of(exc, what) from None
        return ImageChoice(image.name, image.url, image.python, tuple(image.requirements), image.digest,
                           image.framework, image.framework_version)


def _kind(name: str) -> repos_pb2.RepoKind:
    if name not in KINDS:
        raise InvalidArgument("repo_kind", f"must be dataset, featureset or model, not {name!r}")
    return KINDS[name]
